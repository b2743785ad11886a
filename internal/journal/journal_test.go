package journal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocloud.dev/blob/memblob"
)

func TestJournal(t *testing.T) {
	ctx := context.Background()
	mirror := memblob.OpenBucket(nil)
	s := &Store{Dir: t.TempDir(), Mirror: mirror}
	j, err := s.Create("run-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"run.started", "step.started", "step.finished"} {
		if _, err := j.Append(ctx, Event{Type: typ, Time: time.Unix(100, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if !s.Busy("run-1") {
		t.Fatal("an open journal is not busy")
	}
	if _, err := s.Create("run-1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second writer: %v", err)
	}
	j.Close()
	if s.Busy("run-1") {
		t.Fatal("closed journal still busy")
	}

	t.Run("TornLastLine", func(t *testing.T) {
		f, _ := os.OpenFile(filepath.Join(s.Dir, "runs", "run-1", "journal.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(`{"seq":4,"type":"step.out`)
		f.Close()
		evs, err := s.Read(ctx, "run-1")
		if err != nil || len(evs) != 3 || evs[2].Seq != 3 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
	})
	t.Run("FreshMachineReadsTheRepository", func(t *testing.T) {
		fresh := &Store{Dir: t.TempDir(), Mirror: mirror}
		ids, err := fresh.List(ctx, "run-")
		if err != nil || len(ids) != 1 || ids[0] != "run-1" {
			t.Fatalf("list %v %v", ids, err)
		}
		j, evs, err := fresh.Open(ctx, "run-1")
		if err != nil || len(evs) != 3 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		e, err := j.Append(ctx, Event{Type: "run.resumed"})
		if err != nil || e.Seq != 4 {
			t.Fatalf("seq %d %v", e.Seq, err)
		}
		j.Close()
		local, _ := fresh.Read(ctx, "run-1")
		if len(local) != 4 {
			t.Fatalf("local copy has %d events", len(local))
		}
	})
	t.Run("Controls", func(t *testing.T) {
		if err := s.WriteControl(ctx, "run-1", Control{Name: "approve-gate", By: "alice"}); err != nil {
			t.Fatal(err)
		}
		other := &Store{Dir: t.TempDir(), Mirror: mirror}
		if c := other.Controls(ctx, "run-1"); c["approve-gate"].By != "alice" {
			t.Fatalf("controls through the repository: %v", c)
		}
	})
	t.Run("Resolve", func(t *testing.T) {
		s.Create("run-2")
		if _, err := s.Resolve(ctx, "run-", "run-"); err == nil {
			t.Fatal("ambiguous prefix resolved")
		}
		if id, err := s.Resolve(ctx, "2", "run-"); err != nil || id != "run-2" {
			t.Fatalf("%q %v", id, err)
		}
		if _, err := s.Resolve(ctx, "nope", "run-"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%v", err)
		}
	})
}
