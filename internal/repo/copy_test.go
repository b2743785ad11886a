package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/testenv"
)

func put(t *testing.T, r *Repo, key string, data []byte) {
	t.Helper()
	if err := r.loc.bucket.WriteAll(context.Background(), key, data, nil); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, r *Repo, key string) []byte {
	t.Helper()
	b, err := r.loc.bucket.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func keysUnder(t *testing.T, r *Repo, prefix string) []string {
	t.Helper()
	var out []string
	it := r.loc.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Key)
	}
}

// copySuite: every committed backup and every object under wal/, drills/
// and runs/ reaches the copy and reads back identical; unfinished backups,
// leases and other prefixes do not; a second pass copies nothing; grown
// journals are copied again; a pass that died before a manifest is
// finished with the half-copied artifact proven or replaced; a source
// artifact that differs from its manifest is never committed in the copy.
func copySuite(t *testing.T, srcURL, dstURL string, corrupt func(r *Repo, key string)) {
	ctx := context.Background()
	k := newKeys(t)
	src, _, err := Init(ctx, srcURL, k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, _, err := Init(ctx, dstURL, k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	big := make([]byte, 3<<20)
	rand.Read(big)
	m1 := writeBackup(t, src, k, "users-db", map[string][]byte{"a.dump": big, "b.dump": []byte("small")})
	m2 := writeBackup(t, src, k, "cache", map[string][]byte{"keys.resp": []byte("SET a 1")})
	w, _ := src.NewBackup(WriterOptions{Store: "users-db", Kind: "test", Method: "blob", Recipients: k.recipients})
	a, _ := w.CreateArtifact(ctx, "half", "", nil)
	a.Write([]byte("unfinished"))
	a.Close()
	generic := map[string][]byte{
		"wal/users-db/00000001/000000010000000000000001.zst.age": bytes.Repeat([]byte("w"), 4096),
		"wal/users-db/00000001/00000002.history.zst.age":         []byte("history"),
		"drills/20261126T061500Z-ab12.json":                      []byte(`{"drill":1}`),
		"runs/20261126T070000Z-cd34/journal.jsonl":               []byte("{\"step\":1}\n"),
	}
	for key, data := range generic {
		put(t, src, key, data)
	}
	put(t, src, "elsewhere/not-copied.json", []byte("{}"))
	lease, err := src.AcquireLease(ctx, "users-db", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()

	p, err := dst.PlanCopy(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	// 2+1 artifacts and 2 manifests, 4 generic objects.
	if p.Objects != 9 || p.Oldest.IsZero() || len(p.Units) != 6 {
		t.Fatalf("plan: %d objects in %d units, oldest %v", p.Objects, len(p.Units), p.Oldest)
	}
	rep, err := dst.CopyFrom(ctx, src, nil)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if rep.Copied != 9 || rep.Remaining == nil || rep.Remaining.Objects != 0 || rep.Remaining.Lag(p.Oldest) != 0 {
		t.Fatalf("report %+v remaining %+v", rep, rep.Remaining)
	}
	t.Run("Complete", func(t *testing.T) {
		all, err := dst.Backups(ctx, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("copy lists %d backups: %v", len(all), err)
		}
		got, err := readArtifact(dst, m1, "a.dump", k.ids)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("artifact from the copy: %v", err)
		}
		if _, err := readArtifact(dst, m2, "keys.resp", k.ids); err != nil {
			t.Fatal(err)
		}
		for key, data := range generic {
			if !bytes.Equal(get(t, dst, key), data) {
				t.Fatalf("%s differs in the copy", key)
			}
		}
		for _, prefix := range []string{"leases/", "elsewhere/", "backups/users-db/" + w.ID()} {
			if got := keysUnder(t, dst, prefix); len(got) != 0 {
				t.Fatalf("copied what it must not: %v", got)
			}
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		rep, err := dst.CopyFrom(ctx, src, nil)
		if err != nil || rep.Copied != 0 {
			t.Fatalf("second pass copied %d: %v", rep.Copied, err)
		}
	})
	t.Run("GrownJournal", func(t *testing.T) {
		key := "runs/20261126T070000Z-cd34/journal.jsonl"
		grown := append(generic[key], []byte("{\"step\":2}\n")...)
		put(t, src, key, grown)
		rep, err := dst.CopyFrom(ctx, src, nil)
		if err != nil || rep.Copied != 1 || !bytes.Equal(get(t, dst, key), grown) {
			t.Fatalf("grown journal: copied %d, %v", rep.Copied, err)
		}
	})
	t.Run("ResumeProvesHalfCopied", func(t *testing.T) {
		m3 := writeBackup(t, src, k, "users-db", map[string][]byte{"c.dump": []byte("third backup")})
		art := "backups/users-db/" + m3.ID + "/c.dump" + ArtifactSuffix
		// A pass died after writing a damaged artifact of the same size.
		bad := get(t, src, art)
		bad = append([]byte{}, bad...)
		bad[len(bad)/2] ^= 1
		put(t, dst, art, bad)
		if all, _ := dst.Backups(ctx, "users-db"); len(all) != 1 {
			t.Fatalf("half-copied backup visible: %d", len(all))
		}
		rep, err := dst.CopyFrom(ctx, src, nil)
		if err != nil || rep.Copied != 2 {
			t.Fatalf("resume: copied %d (want the artifact again and the manifest): %v", rep.Copied, err)
		}
		if _, err := readArtifact(dst, m3, "c.dump", k.ids); err != nil {
			t.Fatalf("resumed artifact: %v", err)
		}
	})
	t.Run("PoolArtifactsFirst", func(t *testing.T) {
		// An incremental backup whose artifact lives in pool/<store>/.
		data := bytes.Repeat([]byte("p"), 5000)
		sum := sha256.Sum256(data)
		put(t, src, "pool/media/pack-0001.zst.age", data)
		m := Manifest{Format: FormatVersion, ID: NewID(time.Now()), Store: "media", Kind: "s3", Method: "objects",
			Pool: []Artifact{{Name: "pack-0001", Sums: envelope.Sums{StoredSize: int64(len(data)), StoredSHA256: hex.EncodeToString(sum[:])}}}}
		mb, _ := json.Marshal(m)
		put(t, src, manifestKey("media", m.ID), mb)
		rep, err := dst.CopyFrom(ctx, src, nil)
		if err != nil || rep.Copied != 2 {
			t.Fatalf("copied %d: %v", rep.Copied, err)
		}
		if !bytes.Equal(get(t, dst, "pool/media/pack-0001.zst.age"), data) {
			t.Fatal("pool artifact not copied")
		}
		if _, err := dst.Backup(ctx, "media/"+m.ID); err != nil {
			t.Fatalf("backup using the pool not in the copy: %v", err)
		}
	})
	// The streaming receiver replaces a .partial and its sidecar as the
	// segment grows, often at the same sizes: the copy follows, sidecar
	// last, and never holds a sidecar with the wrong data.
	t.Run("ReplacedPartial", func(t *testing.T) {
		data := "wal/users-db/00000001/00000001000000000000000A.partial" + ArtifactSuffix
		side := "wal/users-db/00000001/00000001000000000000000A.partial" + SidecarSuffix
		push := func(b []byte) {
			sum := sha256.Sum256(b)
			put(t, src, data, b)
			put(t, src, side, fmt.Appendf(nil, `{"stored_size":%d,"stored_sha256":"%x"}`, len(b), sum))
		}
		v1, v2, v3 := make([]byte, 1000), make([]byte, 1000), make([]byte, 1000)
		rand.Read(v1)
		rand.Read(v2)
		rand.Read(v3)
		push(v1)
		if _, err := dst.CopyFrom(ctx, src, nil); err != nil {
			t.Fatal(err)
		}
		push(v2) // same sizes, both objects
		rep, err := dst.CopyFrom(ctx, src, nil)
		if err != nil || rep.Copied != 2 || !bytes.Equal(get(t, dst, data), v2) || !bytes.Equal(get(t, dst, side), get(t, src, side)) {
			t.Fatalf("replaced partial: copied %d: %v", rep.Copied, err)
		}
		// Replaced again while the copy reads it: the pass tries again.
		push(v1)
		replaced := 0
		dst.beforeCopy = func(key string) {
			if key == data && replaced == 0 {
				replaced++
				push(v3)
			}
		}
		defer func() { dst.beforeCopy = nil }()
		if _, err := dst.CopyFrom(ctx, src, nil); err != nil || replaced != 1 {
			t.Fatalf("partial replaced during the copy: %v", err)
		}
		if !bytes.Equal(get(t, dst, data), v3) || !bytes.Equal(get(t, dst, side), get(t, src, side)) {
			t.Fatal("the copy holds another version than the source")
		}
		if rep, err := dst.CopyFrom(ctx, src, nil); err != nil || rep.Copied != 0 {
			t.Fatalf("an unchanged partial copied again: %d, %v", rep.Copied, err)
		}
	})
	// A sidecar commits its object: an object that differs from its
	// sidecar's sum leaves the copy with neither.
	t.Run("SidecarCommitsData", func(t *testing.T) {
		data := "wal/users-db/00000001/00000001000000000000000B" + ArtifactSuffix
		side := "wal/users-db/00000001/00000001000000000000000B" + SidecarSuffix
		b := bytes.Repeat([]byte("s"), 3000)
		put(t, src, data, b)
		put(t, src, side, fmt.Appendf(nil, `{"stored_size":%d,"stored_sha256":"%x"}`, len(b), sha256.Sum256(b)))
		corrupt(src, data)
		_, err := dst.CopyFrom(ctx, src, nil)
		if !errors.Is(err, ErrCopyMismatch) || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("copy of a damaged WAL file: %v", err)
		}
		if got := keysUnder(t, dst, strings.TrimSuffix(side, SidecarSuffix)); len(got) != 0 {
			t.Fatalf("the copy holds %v of a damaged WAL file", got)
		}
		put(t, src, data, b)
		if _, err := dst.CopyFrom(ctx, src, nil); err != nil || !bytes.Equal(get(t, dst, data), b) {
			t.Fatalf("repaired source: %v", err)
		}
	})
	t.Run("DamagedSourceNotCommitted", func(t *testing.T) {
		m4 := writeBackup(t, src, k, "cache", map[string][]byte{"keys.resp": bytes.Repeat([]byte("k"), 10000)})
		corrupt(src, "backups/cache/"+m4.ID+"/keys.resp"+ArtifactSuffix)
		_, err := dst.CopyFrom(ctx, src, nil)
		if !errors.Is(err, ErrCopyMismatch) || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("copy of a damaged backup: %v", err)
		}
		if _, err := dst.Backup(ctx, "cache/"+m4.ID); !errors.Is(err, ErrNoBackup) {
			t.Fatalf("damaged backup committed in the copy: %v", err)
		}
	})
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	copySuite(t, "file://"+filepath.Join(dir, "primary"), "file://"+filepath.Join(dir, "dr"), func(r *Repo, key string) {
		p := filepath.Join(r.loc.dir, key)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o600)
	})
}

// TestCopyS3 copies between the two real S3 servers: primary region and
// DR region.
func TestCopyS3(t *testing.T) {
	s3 := testenv.S3(t)
	src := testenv.S3URL(t, s3.Endpoint, testenv.NewBucket(t, s3.Endpoint), "linkdr")
	dst := testenv.S3URL(t, s3.DREndpoint, testenv.NewBucket(t, s3.DREndpoint), "linkdr")
	copySuite(t, src, dst, func(r *Repo, key string) {
		b, err := r.loc.bucket.ReadAll(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 1
		if err := r.loc.bucket.WriteAll(context.Background(), key, b, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCopyObjectLock: objects copied into a copy with Object Lock are
// locked (a specific version cannot be deleted without bypassing the
// governance retention).
func TestCopyObjectLock(t *testing.T) {
	s3i := testenv.S3(t)
	ctx := context.Background()
	k := newKeys(t)
	src, _, err := Init(ctx, testenv.S3URL(t, s3i.Endpoint, testenv.NewBucket(t, s3i.Endpoint), "linkdr"), k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	lockBucket := testenv.NewObjectLockBucket(t, s3i.DREndpoint)
	dst, _, err := Init(ctx, testenv.S3URL(t, s3i.DREndpoint, lockBucket, "linkdr"), k.recipients)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.SetObjectLock(&ObjectLock{Mode: "governance", Days: 1}); err != nil {
		t.Fatal(err)
	}
	m := writeBackup(t, src, k, "users-db", map[string][]byte{"a.dump": []byte("locked in the DR region")})
	if _, err := dst.CopyFrom(ctx, src, nil); err != nil {
		t.Fatalf("copy into an Object Lock bucket: %v", err)
	}
	client := testenv.S3Client(t, s3i.DREndpoint)
	key := "linkdr/" + artifactKey("users-db", m.ID, "a.dump")
	vs, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(lockBucket), Prefix: aws.String(key)})
	if err != nil || len(vs.Versions) != 1 {
		t.Fatalf("versions of %s: %v %v", key, vs, err)
	}
	_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(lockBucket), Key: aws.String(key), VersionId: vs.Versions[0].VersionId})
	if err == nil {
		t.Fatal("a copied artifact was deleted despite the copy's Object Lock")
	}
	// A .partial replaced in the source replaces the locked one in the
	// copy: a new version, the old one kept until its retention ends.
	data := "wal/users-db/00000001/00000001000000000000000C.partial" + ArtifactSuffix
	side := "wal/users-db/00000001/00000001000000000000000C.partial" + SidecarSuffix
	for i, b := range [][]byte{[]byte("first partial"), []byte("second partial, longer")} {
		put(t, src, data, b)
		put(t, src, side, fmt.Appendf(nil, `{"stored_size":%d,"stored_sha256":"%x"}`, len(b), sha256.Sum256(b)))
		if _, err := dst.CopyFrom(ctx, src, nil); err != nil {
			t.Fatalf("partial %d into an Object Lock bucket: %v", i+1, err)
		}
		if !bytes.Equal(get(t, dst, data), b) || !bytes.Equal(get(t, dst, side), get(t, src, side)) {
			t.Fatalf("partial %d: the copy differs from the source", i+1)
		}
	}
}
