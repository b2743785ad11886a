package wal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultSegmentSize is PostgreSQL's default wal_segment_size.
const DefaultSegmentSize = 16 << 20

// LSN is a position in the WAL stream.
type LSN uint64

// String prints an LSN the way PostgreSQL does: 0/16B3748.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// MarshalText makes LSNs print as text in JSON.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses the text form.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := ParseLSN(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLSN parses "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("invalid LSN %q: want the form 16/B374D848", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("invalid LSN %q: want the form 16/B374D848", s)
	}
	return LSN(h<<32 | l), nil
}

// Kind of a file in pg_wal or the archive.
type Kind int

const (
	// Segment is a complete WAL segment: 000000010000000000000003.
	Segment Kind = iota + 1
	// Partial is the beginning of a segment: 000000010000000000000003.partial,
	// written by a promoted standby or by a streaming receiver.
	Partial
	// History is a timeline history file: 00000002.history.
	History
	// BackupLabel is a backup history file: 000000010000000000000003.00000028.backup.
	BackupLabel
)

func (k Kind) String() string {
	switch k {
	case Segment:
		return "segment"
	case Partial:
		return "partial"
	case History:
		return "history"
	case BackupLabel:
		return "backup"
	}
	return "unknown"
}

// Name is a parsed WAL file name.
type Name struct {
	Kind     Kind
	Timeline uint32
	// Log and Seg are the two halves of the segment number as they appear
	// in the name; their meaning depends on the segment size.
	Log, Seg uint32
	// Offset is the start offset of a .backup file (hex in its name).
	Offset uint32
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func hex32(s string) uint32 {
	v, _ := strconv.ParseUint(s, 16, 32)
	return uint32(v)
}

// ErrNotWAL: the name is not one PostgreSQL gives WAL files.
var ErrNotWAL = errors.New("not a WAL file name")

// ParseName parses a file name as found in pg_wal (no directory).
func ParseName(name string) (Name, error) {
	switch {
	case len(name) == 24 && isHex(name):
		return Name{Kind: Segment, Timeline: hex32(name[:8]), Log: hex32(name[8:16]), Seg: hex32(name[16:24])}, nil
	case len(name) == 32 && strings.HasSuffix(name, ".partial") && isHex(name[:24]):
		n, _ := ParseName(name[:24])
		n.Kind = Partial
		return n, nil
	case len(name) == 16 && strings.HasSuffix(name, ".history") && isHex(name[:8]):
		return Name{Kind: History, Timeline: hex32(name[:8])}, nil
	case len(name) == 40 && strings.HasSuffix(name, ".backup") && isHex(name[:24]) && name[24] == '.' && isHex(name[25:33]):
		n, _ := ParseName(name[:24])
		n.Kind, n.Offset = BackupLabel, hex32(name[25:33])
		return n, nil
	}
	return Name{}, fmt.Errorf("%w: %q", ErrNotWAL, name)
}

// String is the file name.
func (n Name) String() string {
	switch n.Kind {
	case History:
		return fmt.Sprintf("%08X.history", n.Timeline)
	case Partial:
		return fmt.Sprintf("%08X%08X%08X.partial", n.Timeline, n.Log, n.Seg)
	case BackupLabel:
		return fmt.Sprintf("%08X%08X%08X.%08X.backup", n.Timeline, n.Log, n.Seg, n.Offset)
	}
	return fmt.Sprintf("%08X%08X%08X", n.Timeline, n.Log, n.Seg)
}

// SegNo is the segment number for a segment size: segments per "log" is
// 4 GiB / size, so the same name means different positions at different
// sizes.
func (n Name) SegNo(segSize int64) uint64 {
	return uint64(n.Log)*segmentsPerID(segSize) + uint64(n.Seg)
}

func segmentsPerID(segSize int64) uint64 { return 0x100000000 / uint64(segSize) }

// SegmentName is the file name of segment segno on a timeline.
func SegmentName(tli uint32, segno uint64, segSize int64) Name {
	per := segmentsPerID(segSize)
	return Name{Kind: Segment, Timeline: tli, Log: uint32(segno / per), Seg: uint32(segno % per)}
}

// SegNoOf is the segment holding lsn.
func SegNoOf(lsn LSN, segSize int64) uint64 { return uint64(lsn) / uint64(segSize) }

// SegmentStart is the LSN where segment segno begins.
func SegmentStart(segno uint64, segSize int64) LSN { return LSN(segno * uint64(segSize)) }

// ValidSegmentSize reports whether PostgreSQL can have this segment size:
// a power of two from 1 MiB to 1 GiB.
func ValidSegmentSize(n int64) bool { return n >= 1<<20 && n <= 1<<30 && n&(n-1) == 0 }

// Page header layout (access/xlog_internal.h).
const (
	pageMagicMin      = 0xD000 // every supported version's XLOG_PAGE_MAGIC is ≥ this
	xlpLongHeader     = 0x0002
	longPageHeaderLen = 40
)

// SegmentHeader is what the long page header at the start of a segment says.
type SegmentHeader struct {
	Magic            uint16
	Timeline         uint32
	PageAddr         LSN
	SystemIdentifier uint64
	SegmentSize      uint32
	BlockSize        uint32
}

// ErrNoHeader: the data does not start with a WAL long page header (a
// zero-filled or foreign file).
var ErrNoHeader = errors.New("no WAL long page header")

// ReadSegmentHeader decodes the first 40 bytes of a segment (little-endian,
// as on every platform PostgreSQL runs on that linkdr supports).
func ReadSegmentHeader(b []byte) (SegmentHeader, error) {
	if len(b) < longPageHeaderLen {
		return SegmentHeader{}, fmt.Errorf("%w: file is %d bytes", ErrNoHeader, len(b))
	}
	le := binary.LittleEndian
	h := SegmentHeader{
		Magic:            le.Uint16(b[0:]),
		Timeline:         le.Uint32(b[4:]),
		PageAddr:         LSN(le.Uint64(b[8:])),
		SystemIdentifier: le.Uint64(b[24:]),
		SegmentSize:      le.Uint32(b[32:]),
		BlockSize:        le.Uint32(b[36:]),
	}
	info := le.Uint16(b[2:])
	if h.Magic < pageMagicMin || info&xlpLongHeader == 0 || !ValidSegmentSize(int64(h.SegmentSize)) || h.BlockSize == 0 {
		return h, fmt.Errorf("%w (magic %#x, info %#x)", ErrNoHeader, h.Magic, info)
	}
	return h, nil
}

// Check compares a segment's header with its name: a file whose header
// says another timeline, position or size is not that segment.
func (h SegmentHeader) Check(n Name) error {
	if h.Timeline != n.Timeline {
		// A segment that starts a new timeline after a switch mid-segment
		// keeps the old timeline in its first page; PostgreSQL accepts
		// that, so only a newer timeline in the header is wrong.
		if h.Timeline > n.Timeline {
			return fmt.Errorf("segment %s: header says timeline %d", n, h.Timeline)
		}
	}
	want := SegmentStart(n.SegNo(int64(h.SegmentSize)), int64(h.SegmentSize))
	if h.PageAddr != want {
		return fmt.Errorf("segment %s: header says it starts at %s, its name says %s", n, h.PageAddr, want)
	}
	return nil
}

// Switch is one line of a timeline history file: the parent timeline and
// the LSN where the child branched off it.
type Switch struct {
	Timeline uint32 `json:"timeline"`
	LSN      LSN    `json:"switch_lsn"`
	Reason   string `json:"reason,omitempty"`
}

// ParseHistory reads a timeline history file: "1\t0/3000000\tno recovery target specified".
func ParseHistory(b []byte) ([]Switch, error) {
	var out []Switch
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.SplitN(text, "\t", 3)
		if len(f) < 2 {
			f = strings.Fields(text)
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("history line %d: %q: want TIMELINE<TAB>LSN<TAB>REASON", line, text)
		}
		tli, err := strconv.ParseUint(strings.TrimSpace(f[0]), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("history line %d: timeline %q", line, f[0])
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("history line %d: %v", line, err)
		}
		s := Switch{Timeline: uint32(tli), LSN: lsn}
		if len(f) == 3 {
			s.Reason = strings.TrimSpace(f[2])
		}
		if len(out) > 0 && (s.Timeline <= out[len(out)-1].Timeline || s.LSN < out[len(out)-1].LSN) {
			return nil, fmt.Errorf("history line %d: timelines must increase", line)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}
