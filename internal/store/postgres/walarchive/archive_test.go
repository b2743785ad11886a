package walarchive

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
)

const segSize = 1 << 20 // the smallest size PostgreSQL allows keeps tests fast

// segment makes a plausible segment: a long page header, then noise.
func segment(tli uint32, segno uint64, seed uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, segno))
	for i := 64; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64()&0x0f0f0f0f0f0f0f0f)
	}
	le := binary.LittleEndian
	le.PutUint16(b[0:], 0xD110)
	le.PutUint16(b[2:], 0x0002)
	le.PutUint32(b[4:], tli)
	le.PutUint64(b[8:], segno*segSize)
	le.PutUint64(b[24:], 7312345678901234567)
	le.PutUint32(b[32:], segSize)
	le.PutUint32(b[36:], 8192)
	return b
}

func name(tli uint32, segno uint64) string { return wal.SegmentName(tli, segno, segSize).String() }

func newArchive(t *testing.T) (*Archive, []age.Identity) {
	t.Helper()
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.ParseX25519Identity(kp.Identity)
	if err != nil {
		t.Fatal(err)
	}
	rp, _, err := repo.Init(context.Background(), "file://"+filepath.Join(t.TempDir(), "repo"), []string{kp.Recipient})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	return New(rp, "users-db", []string{kp.Recipient}, 1), []age.Identity{id}
}

func TestPushFetch(t *testing.T) {
	ctx := context.Background()
	a, ids := newArchive(t)
	seg3 := segment(1, 3, 1, segSize)
	t.Run("OK", func(t *testing.T) {
		res, err := a.Push(ctx, name(1, 3), seg3, SourceArchiveCommand)
		if err != nil || res.AlreadyArchived || res.Info.SystemIdentifier != "7312345678901234567" || res.Info.EndLSN != 4*segSize {
			t.Fatalf("%+v %v", res, err)
		}
		dst := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		if _, err := a.Fetch(ctx, name(1, 3), dst, ids); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, seg3) {
			t.Fatal("fetched content differs")
		}
	})
	t.Run("SameTwice", func(t *testing.T) {
		res, err := a.Push(ctx, name(1, 3), seg3, SourceArchiveCommand)
		if err != nil || !res.AlreadyArchived {
			t.Fatalf("%+v %v", res, err)
		}
		path := filepath.Join(t.TempDir(), name(1, 3))
		os.WriteFile(path, seg3, 0o600)
		if res, err := a.PushFile(ctx, path, SourceArchiveCommand); err != nil || !res.AlreadyArchived {
			t.Fatalf("from a file: %+v %v", res, err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		other := segment(1, 3, 2, segSize)
		if _, err := a.Push(ctx, name(1, 3), other, SourceArchiveCommand); !errors.Is(err, ErrConflict) {
			t.Fatalf("got %v", err)
		}
		path := filepath.Join(t.TempDir(), name(1, 3))
		os.WriteFile(path, other, 0o600)
		if _, err := a.PushFile(ctx, path, SourceArchiveCommand); !errors.Is(err, ErrConflict) {
			t.Fatalf("from a file: %v", err)
		}
	})
	t.Run("PushFile", func(t *testing.T) {
		seg8 := segment(1, 8, 1, segSize)
		path := filepath.Join(t.TempDir(), name(1, 8))
		os.WriteFile(path, seg8, 0o600)
		res, err := a.PushFile(ctx, path, SourceArchiveCommand)
		if err != nil || res.AlreadyArchived || res.Info.PlainSize != segSize {
			t.Fatalf("%+v %v", res, err)
		}
		dst := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		if _, err := a.Fetch(ctx, name(1, 8), dst, ids); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, seg8) {
			t.Fatal("content differs")
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := a.Fetch(ctx, name(1, 9), filepath.Join(t.TempDir(), "x"), ids); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v", err)
		}
		if _, err := a.Fetch(ctx, "00000005.history", filepath.Join(t.TempDir(), "x"), ids); !errors.Is(err, ErrNotFound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("WrongPosition", func(t *testing.T) {
		if _, err := a.Push(ctx, name(1, 4), seg3, SourceArchiveCommand); err == nil || !strings.Contains(err.Error(), "starts at") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ShortSegment", func(t *testing.T) {
		if _, err := a.Push(ctx, name(1, 5), segment(1, 5, 1, segSize/2), SourceArchiveCommand); err == nil {
			t.Fatal("half a segment accepted as complete")
		}
	})
	t.Run("Partial", func(t *testing.T) {
		p := segment(1, 6, 1, segSize/4)
		if _, err := a.Push(ctx, name(1, 6)+".partial", p, SourceStream); err != nil {
			t.Fatal(err)
		}
		longer := segment(1, 6, 1, segSize/2)
		if _, err := a.Push(ctx, name(1, 6)+".partial", longer, SourceStream); err != nil {
			t.Fatalf("a longer partial must replace the old one: %v", err)
		}
		dst := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		in, err := a.Fetch(ctx, name(1, 6), dst, ids)
		if err != nil || in.Kind != "partial" {
			t.Fatalf("%+v %v", in, err)
		}
		got, _ := os.ReadFile(dst)
		if len(got) != segSize || !bytes.Equal(got[:len(longer)], longer) || got[len(got)-1] != 0 {
			t.Fatalf("partial served as %d bytes", len(got))
		}
	})
	// A receiver replacing the partial deletes its sidecar first: a fetch
	// in that moment waits for the new one instead of ending recovery.
	t.Run("PartialBeingReplaced", func(t *testing.T) {
		p := wal.SegmentName(1, 20, segSize)
		p.Kind = wal.Partial
		if _, err := a.Push(ctx, p.String(), segment(1, 20, 1, segSize/4), SourceStream); err != nil {
			t.Fatal(err)
		}
		if err := a.rp.DeleteObject(ctx, a.InfoKey(p)); err != nil {
			t.Fatal(err)
		}
		longer := segment(1, 20, 1, segSize/2)
		retries := 0
		a.beforeRetry = func() {
			if retries++; retries == 2 {
				if _, err := a.Push(ctx, p.String(), longer, SourceStream); err != nil {
					t.Error(err)
				}
			}
		}
		defer func() { a.beforeRetry = nil }()
		dst := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		in, err := a.Fetch(ctx, name(1, 20), dst, ids)
		if err != nil || in.Kind != "partial" || retries != 2 {
			t.Fatalf("%+v %v after %d retries", in, err, retries)
		}
		got, _ := os.ReadFile(dst)
		if !bytes.Equal(got[:len(longer)], longer) {
			t.Fatal("served the old partial")
		}
		// A segment with neither a partial nor its data is not waited for.
		retries = 0
		if _, err := a.Fetch(ctx, name(1, 21), dst, ids); !errors.Is(err, ErrNotFound) || retries != 0 {
			t.Fatalf("missing segment: %v after %d retries", err, retries)
		}
	})
	t.Run("Damaged", func(t *testing.T) {
		if _, err := a.Push(ctx, name(1, 7), segment(1, 7, 1, segSize), SourceArchiveCommand); err != nil {
			t.Fatal(err)
		}
		in, _ := a.Stat(ctx, wal.SegmentName(1, 7, segSize))
		in.PlainSHA256 = strings.Repeat("0", 64)
		bad, _ := jsonMarshal(in)
		a.rp.PutObject(ctx, a.InfoKey(wal.SegmentName(1, 7, segSize)), bad, false)
		dst := filepath.Join(t.TempDir(), "RECOVERYXLOG")
		if _, err := a.Fetch(ctx, name(1, 7), dst, ids); !errors.Is(err, envelope.ErrIntegrity) {
			t.Fatalf("got %v", err)
		}
		if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a damaged segment was handed to PostgreSQL")
		}
	})
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	a, _ := newArchive(t)
	push := func(tli uint32, segs ...uint64) {
		for _, s := range segs {
			if _, err := a.Push(ctx, name(tli, s), segment(tli, s, 1, segSize), SourceArchiveCommand); err != nil {
				t.Fatal(err)
			}
		}
	}
	push(1, 2, 3, 4, 5, 7)
	list := func() []Entry {
		e, err := a.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	start := wal.LSN(2*segSize + 40)
	t.Run("Gap", func(t *testing.T) {
		c, err := a.Walk(ctx, list(), WalkOptions{Timeline: 1, Start: start, SegmentSize: segSize})
		if err != nil {
			t.Fatal(err)
		}
		if c.Complete() || len(c.Missing) != 1 || c.Missing[0] != name(1, 6) || c.Last != name(1, 7) || c.Segments != 5 {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("TargetBeforeGap", func(t *testing.T) {
		c, err := a.Walk(ctx, list(), WalkOptions{Timeline: 1, Start: start, SegmentSize: segSize, Target: 5*segSize + 100})
		if err != nil || !c.Complete() || c.Last != name(1, 5) {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("TimelineSwitch", func(t *testing.T) {
		// Timeline 2 branched off 1 inside segment 4: it has its own 4, 5, 6.
		if _, err := a.Push(ctx, "00000002.history", []byte("1\t0/"+strings.ToUpper(hexLSN(4*segSize+100))+"\tno recovery target specified\n"), SourceArchiveCommand); err != nil {
			t.Fatal(err)
		}
		push(2, 4, 5, 6)
		c, err := a.Walk(ctx, list(), WalkOptions{Timeline: 1, Start: start, SegmentSize: segSize})
		if err != nil || c.Timeline != 2 || !c.Complete() || c.Last != name(2, 6) || c.Segments != 5 {
			t.Fatalf("%+v %v", c, err)
		}
	})
	t.Run("IncompletePush", func(t *testing.T) {
		// Data without a sidecar (a push killed in between) does not count.
		n := wal.SegmentName(2, 7, segSize)
		if _, err := a.rp.PutSealed(ctx, a.DataKey(n), bytes.NewReader(segment(2, 7, 1, segSize)), a.recipients, 1); err != nil {
			t.Fatal(err)
		}
		c, err := a.Walk(ctx, list(), WalkOptions{Timeline: 1, Start: start, SegmentSize: segSize, Target: 7*segSize + 1})
		if err != nil || c.Complete() || c.Missing[0] != n.String() {
			t.Fatalf("%+v %v", c, err)
		}
	})
}

func hexLSN(v uint64) string { return strconv.FormatUint(v, 16) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// A DR copy follows the streaming receiver's partial as it grows: after
// every copy pass the copy serves exactly the partial the source holds,
// although a partial's sidecar is often rewritten at the same size.
func TestCopyFollowsPartial(t *testing.T) {
	ctx := context.Background()
	a, ids := newArchive(t)
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	dr, _, err := repo.Init(ctx, "file://"+filepath.Join(t.TempDir(), "dr"), []string{kp.Recipient})
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	copied := New(dr, "users-db", a.recipients, 1)
	p := wal.SegmentName(1, 30, segSize)
	p.Kind = wal.Partial
	full := segment(1, 30, 3, segSize)
	dst := filepath.Join(t.TempDir(), "RECOVERYXLOG")
	for i := 1; i <= 12; i++ {
		part := full[:segSize/16*i/4+4096]
		if _, err := a.Push(ctx, p.String(), part, SourceStream); err != nil {
			t.Fatal(err)
		}
		if _, err := dr.CopyFrom(ctx, a.rp, nil); err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
		in, err := copied.Fetch(ctx, name(1, 30), dst, ids)
		if err != nil {
			t.Fatalf("pass %d: fetch from the copy: %v", i, err)
		}
		got, _ := os.ReadFile(dst)
		if in.Kind != "partial" || !bytes.Equal(got[:len(part)], part) || in.Sums.PlainSize != int64(len(part)) {
			t.Fatalf("pass %d: the copy serves %d bytes of partial, the source holds %d", i, in.Sums.PlainSize, len(part))
		}
	}
}
