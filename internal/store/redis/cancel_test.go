package redis_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// cancelAfter is an ops.ProgressFunc that cancels once n bytes have
// passed: an interruption in the middle of a transfer, without timing.
type cancelAfter struct {
	n      int64
	seen   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) progress(string, int64) ops.Progress { return c }
func (c *cancelAfter) Add(n int64) {
	if c.seen.Add(n) >= c.n {
		c.cancel()
	}
}
func (c *cancelAfter) Done() {}

// TestInterrupted: Ctrl-C in the middle of a backup leaves no backup; in
// the middle of a restore it stops the restore with context.Canceled.
func TestInterrupted(t *testing.T) {
	src := testenv.NewRedis(t)
	fill(t, client(src, 0), redistest.Spec{Strings: 30000, Lists: 5000, Hashes: 5000, Sets: 5000, ZSets: 5000, Streams: 1000,
		TTLFraction: 0.3, MinTTL: time.Hour, MaxTTL: 2 * time.Hour, Seed: 17})
	r := runner(t, "redis://"+src)
	for _, method := range []string{"resp", "rdb"} {
		t.Run(method, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r.Progress = (&cancelAfter{n: 1 << 20, cancel: cancel}).progress
			_, err := r.Backup(ctx, "cache", method)
			r.Progress = nil
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			rp, err := r.OpenRepo(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			defer rp.Close()
			if ms, err := rp.Backups(context.Background(), "cache"); err != nil || len(ms) != 0 {
				t.Fatalf("after the interruption: %d backups listed (%v)", len(ms), err)
			}
		})
	}
	t.Run("Restore", func(t *testing.T) {
		m, err := r.Backup(context.Background(), "cache", "resp")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r.Progress = (&cancelAfter{n: 1 << 20, cancel: cancel}).progress
		defer func() { r.Progress = nil }()
		dst := testenv.NewRedis(t)
		_, _, err = r.Restore(ctx, "cache", ops.RestoreOptions{Backup: m.ID, Target: "redis://" + dst, Verify: true, Jobs: 2})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}
