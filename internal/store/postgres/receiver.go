package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

// ReceiverOptions configure the streaming WAL receiver.
type ReceiverOptions struct {
	Archive *walarchive.Archive
	// Slot is the physical replication slot; it is created if missing.
	Slot string
	// PartialInterval is how often the segment being written is uploaded.
	PartialInterval time.Duration
	Log             *slog.Logger
	// Status, if set, is called after every upload.
	Status func(ReceiverStatus)
}

// ReceiverStatus is how far the receiver got.
type ReceiverStatus struct {
	Timeline uint32 `json:"timeline"`
	// Received is the end of the WAL received from the server; Durable the
	// end of the WAL stored in the repository (complete segments and the
	// uploaded partial), which is also what the slot is told to keep.
	Received wal.LSN `json:"received_lsn"`
	Durable  wal.LSN `json:"durable_lsn"`
	// ServerEnd is the end of the server's WAL as last reported by it;
	// ServerEnd - Durable is the receiver's lag in bytes.
	ServerEnd wal.LSN   `json:"server_lsn"`
	LagBytes  int64     `json:"lag_bytes"`
	At        time.Time `json:"at"`
}

// ReceiveWAL streams WAL from the server over a physical replication slot
// into the archive until ctx ends, reconnecting after errors. Completed
// segments are uploaded as soon as they fill; the current one is uploaded
// as a .partial every PartialInterval. The slot is only told WAL is
// flushed once it is in the repository, so the server keeps anything a
// restart of the receiver still needs: a receiver killed at any moment
// resumes without a gap.
func (p *Postgres) ReceiveWAL(ctx context.Context, o ReceiverOptions) error {
	if o.PartialInterval <= 0 {
		o.PartialInterval = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = p.log
	}
	backoff := time.Second
	for {
		err := p.receiveOnce(ctx, o)
		if ctx.Err() != nil {
			return nil
		}
		var fatal fatalReceiveError
		if errors.As(err, &fatal) {
			return err
		}
		o.Log.Warn("WAL receiver interrupted; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

type fatalReceiveError struct{ error }

func (e fatalReceiveError) Unwrap() error { return e.error }

// receiver is one streaming session.
type receiver struct {
	o       ReceiverOptions
	conn    *pgconn.PgConn
	segSize int64
	tli     uint32

	seg      []byte  // the segment being received
	segStart wal.LSN // its first LSN
	received wal.LSN // end of the received WAL

	up *uploader
}

func (p *Postgres) receiveOnce(ctx context.Context, o ReceiverOptions) error {
	facts, err := p.physicalFacts(ctx)
	if err != nil {
		return err
	}
	conn, err := p.ep.replicationConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	id, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if err := ensureSlot(ctx, conn, o.Slot); err != nil {
		return err
	}
	restart, err := p.slotRestartLSN(ctx, o.Slot)
	if err != nil {
		return err
	}
	r := &receiver{o: o, conn: conn, segSize: facts.segSize, tli: uint32(id.Timeline)}
	start, tli, err := r.startPoint(ctx, restart)
	if err != nil {
		return err
	}
	if tli != 0 {
		r.tli = tli
	}
	if r.tli > 1 {
		if err := r.archiveHistory(ctx, r.tli); err != nil {
			return err
		}
	}
	r.segStart = start
	r.received = start
	r.seg = make([]byte, 0, r.segSize)
	r.up = newUploader(o.Archive, o.Log, o.Status)
	defer r.up.close()
	o.Log.Info("streaming WAL", "slot", o.Slot, "from", start, "timeline", r.tli, "server_at", wal.LSN(id.XLogPos))
	err = pglogrepl.StartReplication(ctx, conn, o.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{Timeline: int32(r.tli), Mode: pglogrepl.PhysicalReplication})
	if err != nil {
		return fmt.Errorf("START_REPLICATION: %w", err)
	}
	return r.stream(ctx)
}

// ensureSlot creates the physical slot unless it exists.
func ensureSlot(ctx context.Context, conn *pgconn.PgConn, slot string) error {
	_, err := conn.Exec(ctx, "CREATE_REPLICATION_SLOT "+slot+" PHYSICAL RESERVE_WAL").ReadAll()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42710" { // duplicate_object
		return nil
	}
	if err != nil {
		return fmt.Errorf("create replication slot %s: %w (hint: max_replication_slots must leave one free)", slot, err)
	}
	return nil
}

func (p *Postgres) slotRestartLSN(ctx context.Context, slot string) (wal.LSN, error) {
	c, err := p.ep.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.Background())
	var s *string
	if err := c.QueryRow(ctx, `SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1 AND slot_type = 'physical'`, slot).Scan(&s); err != nil {
		return 0, fmt.Errorf("read slot %s: %w", slot, err)
	}
	if s == nil {
		return 0, fatalReceiveError{fmt.Errorf("slot %s reserves no WAL (restart_lsn is NULL): drop it and let linkdr create it", slot)}
	}
	return wal.ParseLSN(*s)
}

// startPoint resumes after the newest complete segment in the archive;
// with an empty archive it starts at the slot's segment. A partial in the
// archive is received again from its segment's start.
func (r *receiver) startPoint(ctx context.Context, restart wal.LSN) (wal.LSN, uint32, error) {
	entries, err := r.o.Archive.List(ctx)
	if err != nil {
		return 0, 0, err
	}
	var last *wal.Name
	for i := range entries {
		e := entries[i]
		if e.Archived && e.Name.Kind == wal.Segment && e.Name.Timeline <= r.tli {
			if last == nil || e.Name.SegNo(r.segSize) > last.SegNo(r.segSize) ||
				(e.Name.SegNo(r.segSize) == last.SegNo(r.segSize) && e.Name.Timeline > last.Timeline) {
				last = &e.Name
			}
		}
	}
	slotSeg := wal.SegmentStart(wal.SegNoOf(restart, r.segSize), r.segSize)
	if last == nil {
		return slotSeg, r.tli, nil
	}
	next := wal.SegmentStart(last.SegNo(r.segSize)+1, r.segSize)
	if next < slotSeg {
		r.o.Log.Error("the archive ends before the slot's oldest WAL: segments in between are lost; take a new physical backup",
			"archive_ends", next, "slot_restart_lsn", restart)
		return slotSeg, r.tli, nil
	}
	return next, last.Timeline, nil
}

// archiveHistory uploads the history file of a timeline if missing.
func (r *receiver) archiveHistory(ctx context.Context, tli uint32) error {
	n := wal.Name{Kind: wal.History, Timeline: tli}
	if _, err := r.o.Archive.Stat(ctx, n); err == nil {
		return nil
	}
	h, err := pglogrepl.TimelineHistory(ctx, r.conn, int32(tli))
	if err != nil {
		return fmt.Errorf("TIMELINE_HISTORY %d: %w", tli, err)
	}
	_, err = r.o.Archive.Push(ctx, n.String(), h.Content, walarchive.SourceStream)
	return err
}

func (r *receiver) stream(ctx context.Context) error {
	statusEvery := time.NewTicker(time.Second)
	defer statusEvery.Stop()
	partialEvery := time.NewTicker(r.o.PartialInterval)
	defer partialEvery.Stop()
	lastPartial := r.received
	for {
		select {
		case <-partialEvery.C:
			if r.received > lastPartial && int64(len(r.seg)) > 0 {
				r.up.partial(r.segName(), r.seg, r.received)
				lastPartial = r.received
			}
		case <-statusEvery.C:
			if err := r.sendStatus(ctx, false); err != nil {
				return err
			}
		default:
		}
		if err := r.up.failed(); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		msg, err := r.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				continue
			}
			if ctx.Err() != nil {
				r.finish()
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.XLogDataByteID:
				x, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return err
				}
				if err := r.write(wal.LSN(x.WALStart), x.WALData); err != nil {
					return fatalReceiveError{err}
				}
				r.up.received.Store(uint64(r.received))
				r.up.serverEnd.Store(uint64(x.ServerWALEnd))
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return err
				}
				r.up.serverEnd.Store(uint64(k.ServerWALEnd))
				if k.ReplyRequested {
					if err := r.sendStatus(ctx, false); err != nil {
						return err
					}
				}
			}
		case *pgproto3.CopyDone:
			// The timeline ended (the server was promoted elsewhere or
			// switched): keep what we have and start over on the next one.
			r.finish()
			return errors.New("end of timeline: the server switched timelines")
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		}
	}
}

func (r *receiver) segName() wal.Name {
	return wal.SegmentName(r.tli, wal.SegNoOf(r.segStart, r.segSize), r.segSize)
}

// write appends WAL at pos, completing segments as they fill.
func (r *receiver) write(pos wal.LSN, data []byte) error {
	if pos != r.received {
		return fmt.Errorf("the server sent WAL at %s, expected %s", pos, r.received)
	}
	for len(data) > 0 {
		room := int(r.segSize) - len(r.seg)
		n := min(room, len(data))
		r.seg = append(r.seg, data[:n]...)
		data = data[n:]
		r.received += wal.LSN(n)
		if len(r.seg) == int(r.segSize) {
			r.up.complete(r.segName(), r.seg)
			r.segStart += wal.LSN(r.segSize)
			r.seg = make([]byte, 0, r.segSize)
		}
	}
	return nil
}

// sendStatus tells the server how far WAL is durable in the repository:
// the slot keeps everything after that.
func (r *receiver) sendStatus(ctx context.Context, reply bool) error {
	durable := r.up.durable()
	if durable == 0 {
		durable = r.segStart
	}
	return pglogrepl.SendStandbyStatusUpdate(ctx, r.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(r.received),
		WALFlushPosition: pglogrepl.LSN(durable),
		WALApplyPosition: pglogrepl.LSN(durable),
		ReplyRequested:   reply,
	})
}

// finish uploads the segment being received, best effort, on the way out.
func (r *receiver) finish() {
	if len(r.seg) > 0 {
		r.up.partial(r.segName(), r.seg, r.received)
	}
}

// uploader pushes segments in order in the background, so receiving never
// waits for the repository. Complete segments queue up; of partials only
// the newest matters.
type uploader struct {
	a      *walarchive.Archive
	log    *slog.Logger
	status func(ReceiverStatus)

	mu         sync.Mutex
	cond       *sync.Cond
	queue      []upload
	pending    *upload // newest partial not yet uploaded
	closed     bool
	err        error
	durableLSN wal.LSN
	doneCh     chan struct{}

	received, serverEnd atomic.Uint64 // set by the receiving side
}

type upload struct {
	name wal.Name
	data []byte
	end  wal.LSN
}

func newUploader(a *walarchive.Archive, log *slog.Logger, status func(ReceiverStatus)) *uploader {
	u := &uploader{a: a, log: log, status: status, doneCh: make(chan struct{})}
	u.cond = sync.NewCond(&u.mu)
	go u.run()
	return u
}

func (u *uploader) complete(n wal.Name, data []byte) {
	u.mu.Lock()
	start := wal.SegmentStart(n.SegNo(int64(cap(data))), int64(cap(data)))
	u.queue = append(u.queue, upload{name: n, data: data, end: start + wal.LSN(len(data))})
	u.pending = nil // superseded by the complete segment
	u.cond.Signal()
	u.mu.Unlock()
}

func (u *uploader) partial(n wal.Name, data []byte, end wal.LSN) {
	u.mu.Lock()
	cp := append([]byte(nil), data...)
	p := n
	p.Kind = wal.Partial
	u.pending = &upload{name: p, data: cp, end: end}
	u.cond.Signal()
	u.mu.Unlock()
}

func (u *uploader) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *uploader) durable() wal.LSN {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.durableLSN
}

// close uploads what is queued (for at most 30 s) and stops.
func (u *uploader) close() {
	u.mu.Lock()
	u.closed = true
	u.cond.Signal()
	u.mu.Unlock()
	select {
	case <-u.doneCh:
	case <-time.After(30 * time.Second):
	}
}

func (u *uploader) run() {
	defer close(u.doneCh)
	ctx := context.Background()
	for {
		u.mu.Lock()
		for len(u.queue) == 0 && u.pending == nil && !u.closed {
			u.cond.Wait()
		}
		var job upload
		switch {
		case len(u.queue) > 0:
			job = u.queue[0]
			u.queue = u.queue[1:]
		case u.pending != nil:
			job = *u.pending
			u.pending = nil
		default: // closed and drained
			u.mu.Unlock()
			return
		}
		failed := u.err != nil
		u.mu.Unlock()
		if failed {
			continue
		}
		err := u.upload(ctx, job)
		u.mu.Lock()
		if err != nil {
			u.err = err
		} else if job.end > u.durableLSN {
			u.durableLSN = job.end
		}
		st := ReceiverStatus{Timeline: job.name.Timeline, Durable: u.durableLSN, At: time.Now(),
			Received: wal.LSN(u.received.Load()), ServerEnd: wal.LSN(u.serverEnd.Load())}
		st.ServerEnd = max(st.ServerEnd, st.Received)
		st.LagBytes = int64(st.ServerEnd) - int64(st.Durable)
		u.mu.Unlock()
		if err == nil && u.status != nil {
			u.status(st)
		}
	}
}

func (u *uploader) upload(ctx context.Context, job upload) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	defer func() {
		u.log.Debug("uploaded", "file", job.name.String(), "bytes", len(job.data), "end", job.end, "took", time.Since(start).Round(time.Millisecond))
	}()
	if _, err := u.a.Push(ctx, job.name.String(), job.data, walarchive.SourceStream); err != nil {
		return fmt.Errorf("upload %s: %w", job.name, err)
	}
	if job.name.Kind == wal.Segment {
		p := job.name
		p.Kind = wal.Partial
		if err := u.a.Delete(ctx, p); err != nil {
			return err
		}
		u.log.Debug("segment archived", "segment", job.name.String())
	}
	return nil
}
