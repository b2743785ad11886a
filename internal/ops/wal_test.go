package ops

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

const testSegSize = 1 << 20

func fakeSegment(segno uint64) []byte {
	b := make([]byte, testSegSize)
	le := binary.LittleEndian
	le.PutUint16(b[0:], 0xD110)
	le.PutUint16(b[2:], 0x0002)
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[8:], segno*testSegSize)
	le.PutUint64(b[24:], 42)
	le.PutUint32(b[32:], testSegSize)
	le.PutUint32(b[36:], 8192)
	b[100] = byte(segno)
	return b
}

// fakePhysical commits a physical backup manifest whose WAL needs start
// in segment startSeg.
func fakePhysical(t *testing.T, r *Runner, startSeg uint64) *repo.Manifest {
	t.Helper()
	ctx := context.Background()
	rp, err := r.OpenRepo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	w, err := rp.NewBackup(repo.WriterOptions{Store: "db", Kind: "postgres", Method: "physical", Recipients: r.Plan.Encryption.Recipients})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := w.CreateArtifact(ctx, "base.tar", postgres.MediaTypeTar, nil)
	a.Write([]byte("not really a tar"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	start := wal.SegmentStart(startSeg, testSegSize) + 40
	src := postgres.PhysicalSource{Timeline: 1, StopTimeline: 1, StartLSN: start, StopLSN: start + 100, WALSegmentSize: testSegSize,
		StartWAL: wal.SegmentName(1, startSeg, testSegSize).String(), StopWAL: wal.SegmentName(1, startSeg, testSegSize).String(),
		Tablespaces: []postgres.Tablespace{{Artifact: "base.tar"}}}
	m, err := w.Commit(ctx, repo.CommitInfo{ConsistentAt: r.now(), Source: src})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWALRetentionStatusVerify(t *testing.T) {
	ctx := context.Background()
	r := TestRunner(t, "", `  db:
    kind: postgres
    url: postgres://postgres@127.0.0.1:1/postgres
    rpo: 1h
    backups: [{method: physical, schedule: "@daily"}]
    wal: {mode: archive}`)
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	r.Plan.Retention.KeepLast, r.Plan.Retention.KeepHourly, r.Plan.Retention.KeepDaily = 1, 0, 0
	r.Plan.Retention.KeepWeekly, r.Plan.Retention.KeepMonthly, r.Plan.Retention.KeepYearly = 0, 0, 0
	cfg, _ := r.WALStore("")
	a, rp, err := r.WALArchive(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	push := func(segs ...uint64) {
		for _, s := range segs {
			if _, err := a.Push(ctx, wal.SegmentName(1, s, testSegSize).String(), fakeSegment(s), walarchive.SourceArchiveCommand); err != nil {
				t.Fatal(err)
			}
		}
	}
	push(1, 2, 3, 4)
	old := fakePhysical(t, r, 2)
	now = now.Add(time.Hour)
	push(5, 6, 7)
	fakePhysical(t, r, 6)
	now = now.Add(50 * time.Minute)
	push(8)
	now = now.Add(10 * time.Minute) // last WAL 10 minutes old, last backup 1 hour

	t.Run("Status", func(t *testing.T) {
		st, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s := st[0]
		if s.ExposureFrom != "wal" || s.Exposure != 10*time.Minute || s.State != StateOK || s.LastWAL != wal.SegmentName(1, 8, testSegSize).String() {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("Verify", func(t *testing.T) {
		rep, err := r.WALVerify(ctx, "db")
		if err != nil || !rep.Chain.Complete() || rep.Chain.Segments != 7 || rep.From != old.ID {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("ErrWALGap", func(t *testing.T) {
		n := wal.SegmentName(1, 4, testSegSize)
		b, _ := rp.GetObject(ctx, a.InfoKey(n))
		rp.DeleteObject(ctx, a.InfoKey(n))
		defer rp.PutObject(ctx, a.InfoKey(n), b, false)
		rep, err := r.WALVerify(ctx, "db")
		if !errors.Is(err, ErrWALGap) || rep.Chain.Missing[0] != n.String() || rep.Backups[0].Consistent != true {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("Retention", func(t *testing.T) {
		reps, err := r.ApplyRetention(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var walRep *SeriesReport
		for i := range reps {
			if reps[i].Method == "(wal)" {
				walRep = &reps[i]
			}
		}
		// The old backup goes, and with it segments 1-5; 6-8 stay for the kept one.
		if walRep == nil || walRep.Removed != 5 || walRep.Kept != 3 {
			t.Fatalf("%+v", reps)
		}
		entries, _ := a.List(ctx)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name.String())
		}
		if len(entries) != 3 || !strings.HasSuffix(names[0], "06") {
			t.Fatalf("left: %v", names)
		}
		rep, err := r.WALVerify(ctx, "db")
		if err != nil || !rep.Chain.Complete() {
			t.Fatalf("after retention: %+v %v", rep, err)
		}
	})
}

func TestWALFetchPrefetch(t *testing.T) {
	ctx := context.Background()
	r := TestRunner(t, "", `  db:
    kind: postgres
    url: postgres://postgres@127.0.0.1:1/postgres
    backups: [{method: physical, schedule: "@daily"}]
    wal: {mode: archive, prefetch: 3}`)
	cfg, _ := r.WALStore("")
	a, rp, err := r.WALArchive(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	for s := uint64(1); s <= 4; s++ {
		if _, err := a.Push(ctx, wal.SegmentName(1, s, testSegSize).String(), fakeSegment(s), walarchive.SourceArchiveCommand); err != nil {
			t.Fatal(err)
		}
	}
	pgwal := t.TempDir()
	name := func(s uint64) string { return wal.SegmentName(1, s, testSegSize).String() }
	res, err := r.WALFetch(ctx, "", name(1), pgwal+"/RECOVERYXLOG")
	if err != nil || res.Prefetched || strings.Join(res.Next, ",") != name(2)+","+name(3)+","+name(4) {
		t.Fatalf("%+v %v", res, err)
	}
	// What restore_command starts in the background: 5 is not archived,
	// which ends the run quietly.
	if err := r.WALPrefetch(ctx, "", res.Dir, append(res.Next, name(5))); err != nil {
		t.Fatal(err)
	}
	res, err = r.WALFetch(ctx, "", name(2), pgwal+"/RECOVERYXLOG")
	if err != nil || !res.Prefetched {
		t.Fatalf("second segment not served from the prefetch: %+v %v", res, err)
	}
	// Already downloaded ahead: only segments after them are suggested.
	if strings.Join(res.Next, ",") != name(5) {
		t.Fatalf("next: %v", res.Next)
	}
	if got, _ := os.ReadFile(pgwal + "/RECOVERYXLOG"); string(got) != string(fakeSegment(2)) {
		t.Fatal("prefetched content differs")
	}
	if _, err := r.WALFetch(ctx, "", name(9), pgwal+"/RECOVERYXLOG"); !walarchive.IsNotFound(err) {
		t.Fatalf("missing segment: %v", err)
	}
}
