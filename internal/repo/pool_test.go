package repo

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
)

func write(t *testing.T, w io.WriteCloser, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPool: a pool artifact outlives the backup that wrote it while a
// later backup references it, and pruning removes it only once nothing
// does. Plain artifacts read back without a key.
func TestPool(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	k := newKeys(t)
	r, _, err := Init(ctx, "file://"+dir, k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	w1, _ := r.NewBackup(WriterOptions{Store: "b", Kind: "test", Method: "inc", Recipients: k.recipients})
	p, err := w1.CreatePoolArtifact(ctx, w1.ID()+"-p1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, p, "pack one")
	pl, err := w1.CreatePlainArtifact(ctx, "catalog", "")
	if err != nil {
		t.Fatal(err)
	}
	write(t, pl, "fingerprints")
	m1, err := w1.Commit(ctx, CommitInfo{ConsistentAt: w1.Started()})
	if err != nil {
		t.Fatal(err)
	}
	if len(m1.Artifacts) != 0 || len(m1.Pool) != 1 || len(m1.Plain) != 1 {
		t.Fatalf("manifest: %+v", m1)
	}

	t.Run("Plain", func(t *testing.T) {
		rc, err := r.OpenPlain(ctx, m1, "catalog")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "fingerprints" {
			t.Fatalf("%q %v", b, err)
		}
		path := filepath.Join(dir, "backups", "b", m1.ID, "catalog"+PlainSuffix)
		orig, _ := os.ReadFile(path)
		bad := append([]byte(nil), orig...)
		bad[len(bad)-5] ^= 1
		os.WriteFile(path, bad, 0o600)
		defer os.WriteFile(path, orig, 0o600)
		rc, _ = r.OpenPlain(ctx, m1, "catalog")
		_, err = io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, envelope.ErrIntegrity) {
			t.Fatalf("damaged plain artifact: %v", err)
		}
	})

	// The second backup references the first one's pack and adds its own.
	w2, _ := r.NewBackup(WriterOptions{Store: "b", Kind: "test", Method: "inc", Recipients: k.recipients})
	if err := w2.ReferencePool(m1.Pool[0]); err != nil {
		t.Fatal(err)
	}
	p2, _ := w2.CreatePoolArtifact(ctx, w2.ID()+"-p1", "", nil)
	write(t, p2, "pack two")
	m2, err := w2.Commit(ctx, CommitInfo{ConsistentAt: w2.Started()})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := readArtifact(r, m2, m1.Pool[0].Name, k.ids); err != nil || string(b) != "pack one" {
		t.Fatalf("referenced pool artifact through the second backup: %q %v", b, err)
	}

	if err := r.Delete(ctx, m1); err != nil {
		t.Fatal(err)
	}
	rep, err := r.PrunePool(ctx, "b", 0, nil, false)
	if err != nil || rep.Referenced != 2 || len(rep.Removed) != 0 {
		t.Fatalf("prune while referenced: %+v %v", rep, err)
	}
	if b, err := readArtifact(r, m2, m1.Pool[0].Name, k.ids); err != nil || string(b) != "pack one" {
		t.Fatalf("after the first backup was deleted: %q %v", b, err)
	}
	// A dry run that treats the second as gone would remove both; grace
	// protects young ones.
	rep, _ = r.PrunePool(ctx, "b", 0, map[string]bool{m2.ID: true}, true)
	if len(rep.Removed) != 2 {
		t.Fatalf("dry run: %+v", rep)
	}
	rep, _ = r.PrunePool(ctx, "b", time.Hour, map[string]bool{m2.ID: true}, true)
	if len(rep.Young) != 2 || len(rep.Removed) != 0 {
		t.Fatalf("grace: %+v", rep)
	}
	if err := r.Delete(ctx, m2); err != nil {
		t.Fatal(err)
	}
	rep, _ = r.PrunePool(ctx, "b", 0, nil, false)
	if len(rep.Removed) != 2 {
		t.Fatalf("prune: %+v", rep)
	}
	if objs, _ := r.Pool(ctx, "b"); len(objs) != 0 {
		t.Fatalf("left: %v", objs)
	}
}

func TestObjectLockNeedsS3(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	r, _, err := Init(ctx, "file://"+filepath.Join(t.TempDir(), "repo"), k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetObjectLock(&ObjectLock{Mode: "compliance", Days: 1}); !errors.Is(err, ErrObjectLockUnsupported) {
		t.Fatalf("got %v", err)
	}
}

// TestDeleteRetained: the repository refuses to delete a backup whose
// retain_until lies ahead, naming the hold.
func TestDeleteRetained(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	r, _, _ := Init(ctx, "mem://retained", k.recipients)
	w, _ := r.NewBackup(WriterOptions{Store: "s", Kind: "test", Method: "m", Recipients: k.recipients})
	a, _ := w.CreateArtifact(ctx, "x", "", nil)
	write(t, a, "x")
	until := time.Now().Add(time.Hour)
	m, err := w.Commit(ctx, CommitInfo{ConsistentAt: w.Started(), RetainUntil: &until})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, m); !errors.Is(err, ErrRetained) || !strings.Contains(err.Error(), "backup is retained: retain_until 20") {
		t.Fatalf("got %v", err)
	}
}
