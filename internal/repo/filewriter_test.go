package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocloud.dev/blob"
)

func openFileLocation(t *testing.T) *location {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	l, err := openLocation(context.Background(), "file://"+dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.close() })
	return l
}

// leftovers lists every file under dir whose name is not in want.
func leftovers(t *testing.T, dir string, want ...string) []string {
	t.Helper()
	var extra []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, w := range want {
			if rel == w {
				return nil
			}
		}
		extra = append(extra, rel)
		return nil
	})
	return extra
}

func TestFileWriterCommits(t *testing.T) {
	l := openFileLocation(t)
	// Larger than two write-back windows, written in odd-sized pieces so
	// the windows do not fall on write boundaries.
	data := make([]byte, 2*writebackEvery+12345)
	rand.Read(data)
	w, err := l.newWriter(context.Background(), "backups/s/id/a.zst.age", nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), 1<<20+7)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if got := leftovers(t, l.dir); len(got) != 1 || filepath.Ext(got[0]) != ".tmp" {
		t.Fatalf("before Close the object must exist only as a temporary file, found %v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := l.bucket.ReadAll(context.Background(), "backups/s/id/a.zst.age")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v (equal=%v)", err, bytes.Equal(got, data))
	}
	if extra := leftovers(t, l.dir, "backups/s/id/a.zst.age"); len(extra) > 0 {
		t.Fatalf("files left beside the object: %v", extra)
	}
	fi, err := os.Stat(filepath.Join(l.dir, "backups/s/id/a.zst.age"))
	if err != nil {
		t.Fatal(err)
	}
	if want := os.FileMode(0o666) &^ umask(t); fi.Mode().Perm() != want {
		t.Fatalf("mode %v, want %v (0666 less the umask, as fileblob writes)", fi.Mode().Perm(), want)
	}
}

func TestFileWriterCancelled(t *testing.T) {
	l := openFileLocation(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := l.newWriter(ctx, "backups/s/id/a.zst.age", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half an artifact")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := w.Write([]byte("more")); !errors.Is(err, context.Canceled) {
		t.Fatalf("write after cancel: %v, want context.Canceled", err)
	}
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Fatalf("close after cancel: %v, want context.Canceled", err)
	}
	if extra := leftovers(t, l.dir); len(extra) > 0 {
		t.Fatalf("a cancelled write left %v", extra)
	}
}

func TestFileWriterFailedWrite(t *testing.T) {
	l := openFileLocation(t)
	w, err := l.newWriter(context.Background(), "backups/s/id/a.zst.age", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("first part")); err != nil {
		t.Fatal(err)
	}
	// The next write fails, as on a full disk, while the file can still
	// be synced, closed and renamed: only the failed write stops Close.
	fw := w.(*fileWriter)
	ro, err := os.Open(fw.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	fw.f.Close()
	fw.f = ro
	if _, err := w.Write([]byte("lost part")); err == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write reported success")
	}
	if extra := leftovers(t, l.dir); len(extra) > 0 {
		t.Fatalf("a failed write left %v", extra)
	}
}

func TestFileWriterRefusesUploadOptions(t *testing.T) {
	l := openFileLocation(t)
	r := &Repo{loc: l, lock: &ObjectLock{Mode: "governance"}}
	until := time.Now().Add(time.Hour)
	_, err := l.newWriter(context.Background(), "k", &blob.WriterOptions{BeforeWrite: r.lockFunc(&until)})
	if !errors.Is(err, ErrObjectLockUnsupported) {
		t.Fatalf("Object Lock on a local disk: %v, want ErrObjectLockUnsupported", err)
	}
}

func TestFileWriterExclusive(t *testing.T) {
	l := openFileLocation(t)
	create := func(body string) error {
		w, err := l.newWriter(context.Background(), "leases/s", &blob.WriterOptions{IfNotExist: true})
		if err != nil {
			return err
		}
		w.Write([]byte(body))
		return w.Close()
	}
	// Two writers open at once: the first to close wins, the second
	// finds the name taken even though it checked nothing when it opened.
	w, err := l.newWriter(context.Background(), "leases/s", &blob.WriterOptions{IfNotExist: true})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("second"))
	if err := create("first"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, errExists) || !isPrecondition(err) {
		t.Fatalf("exclusive create of a taken name: %v, want errExists", err)
	}
	if got, err := l.bucket.ReadAll(context.Background(), "leases/s"); err != nil || string(got) != "first" {
		t.Fatalf("the winner's object: %q, %v", got, err)
	}
	if extra := leftovers(t, l.dir, "leases/s"); len(extra) > 0 {
		t.Fatalf("files left beside the object: %v", extra)
	}
}

func umask(t *testing.T) os.FileMode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(p)
	return 0o777 &^ fi.Mode().Perm()
}
