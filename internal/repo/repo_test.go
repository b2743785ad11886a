package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/linkapp/linkdr/internal/envelope"
)

type keys struct {
	recipients []string
	ids        []age.Identity
}

func newKeys(t *testing.T) keys {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return keys{recipients: []string{id.Recipient().String()}, ids: []age.Identity{id}}
}

// writeBackup stores a backup with the given artifacts and commits it.
func writeBackup(t *testing.T, r *Repo, k keys, store string, arts map[string][]byte) *Manifest {
	t.Helper()
	ctx := context.Background()
	w, err := r.NewBackup(WriterOptions{Store: store, Kind: "test", Method: "blob", Recipients: k.recipients})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range arts {
		a, err := w.CreateArtifact(ctx, name, "application/octet-stream", map[string]string{"n": name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(a, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Commit(ctx, CommitInfo{ConsistentAt: w.Started(), Stats: map[string]int{"rows": 3}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readArtifact(r *Repo, m *Manifest, name string, ids []age.Identity) ([]byte, error) {
	rc, err := r.OpenArtifact(context.Background(), m, name, ids)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// suite is run against every storage backend: mem, file and (in
// s3_test.go) the real S3 server from testenv.
func suite(t *testing.T, url string) {
	ctx := context.Background()
	k := newKeys(t)

	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := Open(ctx, url); !errors.Is(err, ErrNotFound) {
			t.Fatalf("open before init: %v", err)
		}
	})
	r, created, err := Init(ctx, url, k.recipients)
	if err != nil || !created {
		t.Fatalf("init: created=%v err=%v", created, err)
	}
	t.Cleanup(func() { r.Close() })
	t.Run("InitIdempotent", func(t *testing.T) {
		r2, created, err := Init(ctx, url, k.recipients)
		if err != nil || created || r2.Config().ID != r.Config().ID {
			t.Fatalf("second init: created=%v err=%v", created, err)
		}
	})

	big := make([]byte, 5<<20)
	rand.Read(big)
	m := writeBackup(t, r, k, "users-db", map[string][]byte{"a.dump": []byte("hello"), "b.dump": big})

	t.Run("RoundTrip", func(t *testing.T) {
		got, err := readArtifact(r, m, "b.dump", k.ids)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("read back: %v (equal=%v)", err, bytes.Equal(got, big))
		}
	})
	t.Run("Catalog", func(t *testing.T) {
		m2 := writeBackup(t, r, k, "cache", map[string][]byte{"x": []byte("x")})
		all, err := r.Backups(ctx, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("list: %d, %v", len(all), err)
		}
		stores, _ := r.Stores(ctx)
		if strings.Join(stores, ",") != "cache,users-db" {
			t.Fatalf("stores %v", stores)
		}
		got, err := r.Backup(ctx, m2.ID)
		if err != nil || got.Store != "cache" {
			t.Fatalf("get: %v %v", got, err)
		}
		if _, err := r.Backup(ctx, "users-db/"+m.ID[:10]); err != nil {
			t.Fatalf("get by store/prefix: %v", err)
		}
		if _, err := r.Backup(ctx, "nope"); !errors.Is(err, ErrNoBackup) {
			t.Fatalf("missing: %v", err)
		}
		latest, err := r.Latest(ctx, "users-db", "")
		if err != nil || latest.ID != m.ID {
			t.Fatalf("latest: %v %v", latest, err)
		}
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		if _, err := readArtifact(r, m, "a.dump", newKeys(t).ids); !errors.Is(err, envelope.ErrWrongKey) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("UncommittedIsInvisible", func(t *testing.T) {
		w, _ := r.NewBackup(WriterOptions{Store: "users-db", Kind: "test", Method: "blob", Recipients: k.recipients})
		a, _ := w.CreateArtifact(ctx, "half", "", nil)
		a.Write([]byte("partial"))
		a.Close()
		all, _ := r.Backups(ctx, "users-db")
		for _, b := range all {
			if b.ID == w.ID() {
				t.Fatal("uncommitted backup listed")
			}
		}
		inc, _ := r.Incomplete(ctx, "users-db")
		if _, ok := inc[w.ID()]; !ok {
			t.Fatalf("incomplete backup not reported: %v", inc)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		inc, _ = r.Incomplete(ctx, "users-db")
		if len(inc) != 0 {
			t.Fatalf("abort left %v", inc)
		}
	})
	t.Run("CancelledCommit", func(t *testing.T) {
		w, _ := r.NewBackup(WriterOptions{Store: "users-db", Kind: "test", Method: "blob", Recipients: k.recipients})
		a, _ := w.CreateArtifact(ctx, "x", "", nil)
		a.Write([]byte("x"))
		a.Close()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := w.Commit(cctx, CommitInfo{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("commit after cancel: %v", err)
		}
		w.Abort()
	})
	t.Run("ErrLocked", func(t *testing.T) {
		l1, err := r.AcquireLease(ctx, "users-db", "backup", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.AcquireLease(ctx, "users-db", "backup", time.Minute); !errors.Is(err, ErrLocked) {
			t.Fatalf("second writer: %v", err)
		}
		if err := l1.Renew(ctx); err != nil {
			t.Fatal(err)
		}
		if err := l1.Release(); err != nil {
			t.Fatal(err)
		}
		l2, err := r.AcquireLease(ctx, "users-db", "backup", time.Minute)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		l2.Release()
	})
	t.Run("ConditionalWrite", func(t *testing.T) {
		// Leases rely on if-not-exists writes being enforced by the storage.
		if err := r.writeAll(ctx, "leases/cond-test.json", []byte("{}"), true); err != nil {
			t.Fatal(err)
		}
		if err := r.writeAll(ctx, "leases/cond-test.json", []byte("{}"), true); !isPrecondition(err) {
			t.Fatalf("second conditional write: %v, want a precondition failure", err)
		}
		r.loc.bucket.Delete(ctx, "leases/cond-test.json")
	})
	t.Run("StaleLeaseExpires", func(t *testing.T) {
		now := time.Now()
		r.SetClock(func() time.Time { return now })
		defer r.SetClock(time.Now)
		dead, err := r.AcquireLease(ctx, "cache", "backup", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Minute) // the holder died and never renewed
		l, err := r.AcquireLease(ctx, "cache", "backup", time.Minute)
		if err != nil {
			t.Fatalf("stale lease not taken over: %v", err)
		}
		if err := dead.Renew(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("old holder renew: %v", err)
		}
		dead.Release() // must not delete the new holder's lease
		if _, err := r.AcquireLease(ctx, "cache", "backup", time.Minute); !errors.Is(err, ErrLocked) {
			t.Fatalf("old holder's release removed the new lease: %v", err)
		}
		l.Release()
	})
	t.Run("LeaderTerms", func(t *testing.T) {
		if cur, err := r.CurrentTerm(ctx); err != nil || cur != nil {
			t.Fatalf("before any leader: %v %v", cur, err)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if err := r.ClaimTerm(ctx, LeaderTerm{Term: 1, Holder: "a", Expires: now}); err != nil {
			t.Fatal(err)
		}
		if err := r.ClaimTerm(ctx, LeaderTerm{Term: 1, Holder: "b"}); !errors.Is(err, ErrLocked) {
			t.Fatalf("second claim of term 1: %v", err)
		}
		// Candidates racing for the next term, each with its own handle
		// (as separate processes would have): exactly one wins.
		const n = 6
		wins := make(chan string, n)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				ri, err := Open(ctx, url)
				if err != nil {
					errs <- err
					return
				}
				defer ri.Close()
				holder := fmt.Sprintf("c%d", i)
				err = ri.ClaimTerm(ctx, LeaderTerm{Term: 2, Holder: holder})
				switch {
				case err == nil:
					wins <- holder
				case !errors.Is(err, ErrLocked):
					errs <- err
				}
				errs <- nil
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		close(wins)
		var winners []string
		for w := range wins {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("winners of term 2: %v, want exactly one", winners)
		}
		cur, err := r.CurrentTerm(ctx)
		if err != nil || cur.Term != 2 || cur.Holder != winners[0] {
			t.Fatalf("current term %+v %v, want 2 held by %s", cur, err, winners[0])
		}
		cur.Expires = now.Add(time.Minute)
		if err := r.RenewTerm(ctx, *cur); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.CurrentTerm(ctx); !got.Expires.Equal(now.Add(time.Minute)) {
			t.Fatalf("renewed term %+v", got)
		}
		if err := r.PruneTerms(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if ok, _ := r.loc.bucket.Exists(ctx, termKey(1)); ok {
			t.Fatal("term 1 not pruned")
		}
		if got, _ := r.CurrentTerm(ctx); got == nil || got.Term != 2 {
			t.Fatalf("after prune: %+v", got)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		m3 := writeBackup(t, r, k, "tmp", map[string][]byte{"x": []byte("x")})
		if err := r.Delete(ctx, m3); err != nil {
			t.Fatal(err)
		}
		if all, _ := r.Backups(ctx, "tmp"); len(all) != 0 {
			t.Fatalf("still listed: %v", all)
		}
		if inc, _ := r.Incomplete(ctx, "tmp"); len(inc) != 0 {
			t.Fatalf("left files: %v", inc)
		}
	})
}

func TestMem(t *testing.T) { suite(t, "mem://repo-test") }

func TestFile(t *testing.T) {
	dir := t.TempDir()
	suite(t, "file://"+filepath.Join(dir, "repo"))
}

// TestFileCorruption flips a byte and truncates an artifact on disk.
func TestFileCorruption(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	k := newKeys(t)
	r, _, err := Init(ctx, "file://"+dir, k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("row\n"), 100000)
	m := writeBackup(t, r, k, "db", map[string][]byte{"d": data})
	path := filepath.Join(dir, "backups", "db", m.ID, "d.zst.age")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("artifact not at the documented path: %v", err)
	}
	t.Run("FlippedByte", func(t *testing.T) {
		bad := bytes.Clone(orig)
		bad[len(bad)/2] ^= 0x80
		os.WriteFile(path, bad, 0o600)
		if _, err := readArtifact(r, m, "d", k.ids); !errors.Is(err, envelope.ErrIntegrity) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		os.WriteFile(path, orig[:len(orig)-10], 0o600)
		if _, err := readArtifact(r, m, "d", k.ids); !errors.Is(err, envelope.ErrIntegrity) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		os.Remove(path)
		if _, err := readArtifact(r, m, "d", k.ids); !errors.Is(err, envelope.ErrIntegrity) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestNewIDSortsByTime(t *testing.T) {
	a := NewID(time.Date(2026, 11, 26, 6, 15, 0, 0, time.UTC))
	b := NewID(time.Date(2026, 11, 26, 6, 15, 1, 0, time.UTC))
	if !(a < b) || !strings.HasPrefix(a, "20261126T061500Z-") || len(a) != 21 {
		t.Fatalf("%s %s", a, b)
	}
	if ts, err := IDTime(a); err != nil || ts.Minute() != 15 {
		t.Fatalf("%v %v", ts, err)
	}
}

// TestLatestWithinOneSecond: backups started in the same second (ids
// differing only by their random suffix) are ordered by start time, so
// Latest is the newest, not the one whose suffix sorts last.
func TestLatestWithinOneSecond(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	r, _, err := Init(ctx, "mem://latest-same-second", k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	base := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	for i := range 40 {
		now := base.Add(time.Duration(i) * time.Second)
		r.SetClock(func() time.Time { return now })
		first := writeBackup(t, r, k, "s", map[string][]byte{"a": []byte("1")})
		now = now.Add(300 * time.Millisecond)
		second := writeBackup(t, r, k, "s", map[string][]byte{"a": []byte("2")})
		if second.ID > first.ID {
			continue // ids happen to sort right: try again
		}
		latest, err := r.Latest(ctx, "s", "")
		if err != nil {
			t.Fatal(err)
		}
		if latest.ID != second.ID {
			t.Fatalf("Latest = %s (started %v), want %s (started %v)", latest.ID, latest.Started, second.ID, second.Started)
		}
		return
	}
	t.Fatal("no pair of backups whose ids sort against their start times in 40 tries")
}

// TestFileShared: objects written with exclusive create are as readable as
// fileblob's, because a repository is shared between users (root runs
// `repo init`, the postgres user runs archive_command).
func TestFileShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	k := newKeys(t)
	if _, _, err := Init(context.Background(), "file://"+dir, k.recipients); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "linkdr-repo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o044 == 0 {
		t.Fatalf("linkdr-repo.json has mode %v: other users of the repository cannot read it", fi.Mode())
	}
}
