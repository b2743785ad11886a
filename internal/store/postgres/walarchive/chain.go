package walarchive

import (
	"context"
	"fmt"
	"time"

	"github.com/linkapp/linkdr/internal/store/postgres/wal"
)

// Chain is the WAL that replaying from a base backup reads: a run of
// segments along the timeline history, from the backup's start segment to
// a target (or to the end of the archive).
type Chain struct {
	// Timeline is the timeline recovery ends on (PostgreSQL's "latest":
	// the highest archived timeline that descends from the start).
	Timeline uint32 `json:"timeline"`
	// First and Last are the first and last segment names read.
	First string `json:"first"`
	Last  string `json:"last,omitempty"`
	// EndLSN is where the archived WAL of the chain ends.
	EndLSN wal.LSN `json:"end_lsn,omitempty"`
	// Segments counts the archived segments in the chain.
	Segments int `json:"segments"`
	// Missing lists segments the chain needs that are not archived: replay
	// would stop at the first of them.
	Missing []string `json:"missing,omitempty"`
	// Partial: the chain ends in a .partial segment (streaming receiver).
	Partial bool `json:"partial,omitempty"`
	// LastArchived is when the last segment of the chain was archived.
	LastArchived time.Time `json:"last_archived,omitzero"`
}

// Complete reports whether no segment is missing.
func (c *Chain) Complete() bool { return len(c.Missing) == 0 }

// Span is a piece of a chain on one timeline: segments [From, To]
// (To = ^uint64(0) for "to the end").
type span struct {
	tli      uint32
	from, to uint64
}

// Histories reads the sidecars of the archived history files.
func (a *Archive) Histories(ctx context.Context, entries []Entry) (map[uint32][]wal.Switch, error) {
	out := map[uint32][]wal.Switch{}
	for _, e := range entries {
		if e.Name.Kind != wal.History || !e.Archived {
			continue
		}
		in, err := a.Stat(ctx, e.Name)
		if err != nil {
			return nil, err
		}
		out[e.Name.Timeline] = in.History
	}
	return out, nil
}

// TargetTimeline picks the timeline recovery from (tli, start) ends on:
// the highest timeline whose history shows it descends from tli after
// start, or tli itself.
func TargetTimeline(histories map[uint32][]wal.Switch, tli uint32, start wal.LSN) uint32 {
	best := tli
	for t, h := range histories {
		if t <= best {
			continue
		}
		for _, s := range h {
			if s.Timeline == tli && s.LSN >= start {
				best = t
				break
			}
		}
	}
	return best
}

// spans is the path of timelines from (tli, start) to target.
func spans(histories map[uint32][]wal.Switch, tli uint32, start wal.LSN, target uint32, segSize int64) []span {
	from := wal.SegNoOf(start, segSize)
	if target == tli {
		return []span{{tli, from, ^uint64(0)}}
	}
	var out []span
	cur := tli
	for _, s := range histories[target] {
		if s.Timeline < cur {
			continue
		}
		end := wal.SegNoOf(s.LSN, segSize)
		if end > from {
			out = append(out, span{s.Timeline, from, end - 1})
		}
		from = end
		cur = s.Timeline + 1
	}
	return append(out, span{target, from, ^uint64(0)})
}

// WalkOptions choose where a chain starts and ends.
type WalkOptions struct {
	Timeline    uint32
	Start       wal.LSN
	SegmentSize int64
	// Target, if not zero, is the last LSN that must be covered; zero
	// means "to the end of the archive".
	Target wal.LSN
	// Timeline to end on; 0 means the latest descending from the start.
	TargetTimeline uint32
}

// Walk follows the archive from a start point and reports the chain and
// its holes.
func (a *Archive) Walk(ctx context.Context, entries []Entry, o WalkOptions) (*Chain, error) {
	if !wal.ValidSegmentSize(o.SegmentSize) {
		return nil, fmt.Errorf("invalid WAL segment size %d", o.SegmentSize)
	}
	hist, err := a.Histories(ctx, entries)
	if err != nil {
		return nil, err
	}
	target := o.TargetTimeline
	if target == 0 {
		target = TargetTimeline(hist, o.Timeline, o.Start)
	}
	have := map[wal.Name]bool{}
	partial := map[wal.Name]bool{}
	last := map[uint32]uint64{} // highest archived segno per timeline
	for _, e := range entries {
		if !e.Archived || (e.Name.Kind != wal.Segment && e.Name.Kind != wal.Partial) {
			continue
		}
		key := e.Name
		key.Kind = wal.Segment
		if e.Name.Kind == wal.Partial {
			partial[key] = true
		} else {
			have[key] = true
		}
		if sn := e.Name.SegNo(o.SegmentSize); sn >= last[e.Name.Timeline] {
			last[e.Name.Timeline] = sn
		}
	}
	c := &Chain{Timeline: target, First: wal.SegmentName(o.Timeline, wal.SegNoOf(o.Start, o.SegmentSize), o.SegmentSize).String()}
	var lastName wal.Name
	sp := spans(hist, o.Timeline, o.Start, target, o.SegmentSize)
	for i, s := range sp {
		to := s.to
		if i == len(sp)-1 {
			if o.Target != 0 {
				to = wal.SegNoOf(o.Target, o.SegmentSize)
			} else {
				to = last[s.tli]
				if to < s.from {
					to = s.from // at least the first segment of the span is needed
				}
			}
		}
		for sn := s.from; sn <= to; sn++ {
			n := wal.SegmentName(s.tli, sn, o.SegmentSize)
			switch {
			case have[n]:
				c.Segments++
				lastName = n
			case partial[n] && sn == to && i == len(sp)-1:
				c.Segments++
				c.Partial = true
				lastName = n
				lastName.Kind = wal.Partial
			default:
				if len(c.Missing) < 100 {
					c.Missing = append(c.Missing, n.String())
				}
			}
			if sn == ^uint64(0) {
				break
			}
		}
	}
	if lastName.Kind != 0 {
		c.Last = lastName.String()
		if in, err := a.Stat(ctx, lastName); err == nil {
			c.EndLSN, c.LastArchived = in.EndLSN, in.Archived
		}
	}
	return c, nil
}

// ResolveSegment names the archived copy of segment segno that replay
// between timelines from and to reads: the newest timeline that has it.
func ResolveSegment(entries []Entry, segno uint64, segSize int64, from, to uint32) wal.Name {
	best := wal.SegmentName(to, segno, segSize)
	found := false
	for _, e := range entries {
		if e.Archived && e.Name.Kind == wal.Segment && e.Name.Timeline >= from && e.Name.Timeline <= to && e.Name.SegNo(segSize) == segno {
			if !found || e.Name.Timeline > best.Timeline {
				best, found = e.Name, true
			}
		}
	}
	return best
}
