package s3bucket

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/testenv"
)

// putAll writes objects (key → content) in parallel.
func putAll(t testing.TB, c *s3.Client, bucket string, objs map[string][]byte) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for k, v := range objs {
		g.Go(func() error {
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(v)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// contents lists a bucket prefix as key → ETag (the MD5 of single-part
// uploads), relative to prefix.
func contents(t testing.TB, c *s3.Client, bucket, prefix string) map[string]string {
	t.Helper()
	got, err := listAll(context.Background(), c, Location{Bucket: bucket, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range got {
		out[k] = v.ETag
	}
	return out
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func sameContents(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var bad []string
	for k, v := range want {
		if got[k] != v {
			bad = append(bad, fmt.Sprintf("%s: got %q want %q", k, got[k], v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			bad = append(bad, k+": not expected")
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("… %d more", len(bad)-5))
		}
		t.Fatalf("%s differs (%d vs %d objects):\n  %s", what, len(got), len(want), strings.Join(bad, "\n  "))
	}
}

func stats(t *testing.T, m *repo.Manifest) Stats {
	t.Helper()
	var st Stats
	if err := json.Unmarshal(m.Stats, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestIncremental is the acceptance path against the real S3 server:
// 10k objects, backup, change 100 and delete 10, incremental backup copies
// only those, and a restore of the first backup reproduces the bucket.
func TestIncremental(t *testing.T) {
	ctx := context.Background()
	info := testenv.S3(t)
	c := testenv.S3Client(t, info.Endpoint)
	bucket := testenv.NewBucket(t, info.Endpoint)
	url := testenv.S3URL(t, info.Endpoint, bucket, "data")
	r := ops.TestRunner(t, "", fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", url))

	const n = 10000
	orig := map[string][]byte{}
	for i := range n {
		orig[fmt.Sprintf("data/u/%04d/avatar-%d.jpg", i%100, i)] = []byte(fmt.Sprintf("object %d %s", i, strings.Repeat("x", i%300)))
	}
	putAll(t, c, bucket, orig)
	// One object with a content type and user metadata, one empty, one
	// with an awkward key.
	special := []struct{ key, ct string }{{"data/docs/terms.html", "text/html"}, {"data/empty", ""}, {"data/odd key/ü & ?=.txt", ""}}
	for _, s := range special {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(s.key), Body: bytes.NewReader([]byte(s.ct))}
		if s.ct != "" {
			in.ContentType, in.Metadata = aws.String(s.ct), map[string]string{"owner": "legal"}
		}
		if _, err := c.PutObject(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// Outside the prefix: never backed up.
	putAll(t, c, bucket, map[string][]byte{"other/x": []byte("x")})
	before := contents(t, c, bucket, "data/")
	if len(before) != n+3 {
		t.Fatalf("setup: %d objects", len(before))
	}

	m1, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	st1 := stats(t, m1)
	if st1.Objects != n+3 || st1.CopiedObjects != n+3 || st1.UnchangedObjects != 0 || st1.PacksWritten != 1 {
		t.Fatalf("first backup: %+v", st1)
	}

	// Modify 100, delete 10, add 1.
	changed := map[string][]byte{}
	var deleted []string
	i := 0
	for k := range orig {
		switch {
		case i < 100:
			changed[k] = []byte("changed " + k)
		case i < 110:
			deleted = append(deleted, k)
		}
		i++
	}
	changed["data/new/object"] = []byte("new")
	putAll(t, c, bucket, changed)
	for _, k := range deleted {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	after := contents(t, c, bucket, "data/")

	m2, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	st2 := stats(t, m2)
	if st2.CopiedObjects != 101 || st2.UnchangedObjects != n+3-110 || st2.Objects != n+3-10+1 || st2.PacksReferenced != 1 || st2.PacksWritten != 1 {
		t.Fatalf("incremental backup copied more or less than the changes: %+v", st2)
	}
	if len(m2.Pool) != 2 || m2.Pool[0].Name == m2.Pool[1].Name {
		t.Fatalf("second backup should use its own pack and the first's: %+v", m2.Pool)
	}

	// One target bucket throughout: a full restore, then forced restores
	// that only touch what differs.
	target := testenv.NewBucket(t, info.Endpoint)
	turl := testenv.S3URL(t, info.Endpoint, target, "restored")
	t.Run("RestoreFirstBackupExactly", func(t *testing.T) {
		_, res, err := r.Restore(ctx, "media", ops.RestoreOptions{Backup: m1.ID, Target: turl, Verify: true, Jobs: 8})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Items[0].Verified || !strings.Contains(res.Items[0].Checked, fmt.Sprintf("%d objects: keys, sizes and MD5s match", n+3)) {
			t.Fatalf("restore result: %+v", res.Items)
		}
		sameContents(t, "restored first backup", contents(t, c, target, "restored/"), before)
		h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(target), Key: aws.String("restored/docs/terms.html")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(h.ContentType) != "text/html" || h.Metadata["owner"] != "legal" {
			t.Fatalf("content type %q, metadata %v", aws.ToString(h.ContentType), h.Metadata)
		}
	})

	t.Run("ForceMakesTargetExact", func(t *testing.T) {
		// The second backup over the first: the changed objects change,
		// the deleted ones go, the new one comes; then back again.
		_, _, err := r.Restore(ctx, "media", ops.RestoreOptions{Backup: m2.ID, Target: turl, Verify: true})
		if !errors.Is(err, store.ErrTargetNotEmpty) {
			t.Fatalf("restore into a non-empty bucket: %v", err)
		}
		if _, _, err := r.Restore(ctx, "media", ops.RestoreOptions{Backup: m2.ID, Target: turl, Verify: true, Force: true}); err != nil {
			t.Fatal(err)
		}
		sameContents(t, "second backup forced over the first", contents(t, c, target, "restored/"), after)
		if _, _, err := r.Restore(ctx, "media", ops.RestoreOptions{Backup: m1.ID, Target: turl, Verify: true, Force: true}); err != nil {
			t.Fatal(err)
		}
		sameContents(t, "first backup forced over the second", contents(t, c, target, "restored/"), before)
	})

	t.Run("VerifyDetectsDifference", func(t *testing.T) {
		tb := testenv.NewBucket(t, info.Endpoint)
		loc := Location{Bucket: tb}
		putAll(t, c, tb, map[string][]byte{"u/0001/avatar-1.jpg": []byte("tampered")})
		entries := []Entry{{Key: "u/0001/avatar-1.jpg", Size: 8, MD5: md5hex([]byte("original"))}, {Key: "gone", Size: 1}}
		_, err := VerifyTarget(ctx, c, loc, entries, true)
		if !errors.Is(err, store.ErrMismatch) || !strings.Contains(err.Error(), "gone is missing") || !strings.Contains(err.Error(), "content differs") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("VerifyBackup", func(t *testing.T) {
		rp, err := r.OpenRepo(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer rp.Close()
		if _, err := r.Verify(ctx, rp, m2); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("RetentionKeepsReferencedPacks", func(t *testing.T) {
		// Keep only the newest backup; two hours on so the pool's grace
		// has passed. The first backup goes, its pack stays (the second
		// references it), and the second still restores.
		r.Plan.Retention = plan.Retention{KeepLast: 1}
		r.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
		defer func() { r.Now = nil }()
		reps, err := r.ApplyRetention(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var pool *repo.PruneReport
		for _, s := range reps {
			if s.Method == "objects" && s.Removed != 1 {
				t.Fatalf("retention: %+v", s)
			}
			if s.Pool != nil {
				pool = s.Pool
			}
		}
		if pool == nil || pool.Referenced != 2 || len(pool.Removed) != 0 {
			t.Fatalf("pool: %+v", pool)
		}
		if _, _, err := r.Restore(ctx, "media", ops.RestoreOptions{Backup: m2.ID, Target: turl, Verify: true, Force: true}); err != nil {
			t.Fatal(err)
		}
		sameContents(t, "second backup after retention", contents(t, c, target, "restored/"), after)
	})
}

// TestOrphanPacksPruned: pool artifacts that no backup references (left
// by an aborted backup, or by deleted backups) are removed by retention.
func TestOrphanPacksPruned(t *testing.T) {
	ctx := context.Background()
	info := testenv.S3(t)
	c := testenv.S3Client(t, info.Endpoint)
	bucket := testenv.NewBucket(t, info.Endpoint)
	r := ops.TestRunner(t, "", fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", testenv.S3URL(t, info.Endpoint, bucket, "")))
	putAll(t, c, bucket, map[string][]byte{"a": []byte("1")})
	m1, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	putAll(t, c, bucket, map[string][]byte{"a": []byte("2")}) // the first pack is no longer needed
	if _, err := r.Backup(ctx, "media", ""); err != nil {
		t.Fatal(err)
	}
	r.Plan.Retention = plan.Retention{KeepLast: 1}
	r.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	reps, err := r.ApplyRetention(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range reps {
		if s.Pool != nil && (len(s.Pool.Removed) != 1 || s.Pool.Removed[0] != m1.Pool[0].Name || s.Pool.Referenced != 1) {
			t.Fatalf("pool: %+v", s.Pool)
		}
	}
}

// TestReplication plants missing, different and extra objects in a
// replica bucket on the second (DR region) server and expects exactly
// those back.
func TestReplication(t *testing.T) {
	ctx := context.Background()
	info := testenv.S3(t)
	c := testenv.S3Client(t, info.Endpoint)
	dr := testenv.S3Client(t, info.DREndpoint)
	src := testenv.NewBucket(t, info.Endpoint)
	rep := testenv.NewBucket(t, info.DREndpoint)
	objs := map[string][]byte{}
	for i := range 200 {
		objs[fmt.Sprintf("p/%03d", i)] = []byte(fmt.Sprint(i))
	}
	putAll(t, c, src, objs)
	putAll(t, dr, rep, objs)
	cfg := &plan.Store{Name: "media", Kind: "s3", URL: plan.Secret(testenv.S3URL(t, info.Endpoint, src, "p")),
		Replica: &plan.Replica{URL: testenv.S3URL(t, info.DREndpoint, rep, "p")}}

	r, err := VerifyReplication(ctx, cfg, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !r.InSync || r.SourceObjects != 200 || r.ReplicaObjects != 200 || r.Lag != 0 {
		t.Fatalf("identical buckets: %+v", r)
	}

	for _, k := range []string{"p/001", "p/002", "p/003"} {
		if _, err := dr.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(rep), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	putAll(t, dr, rep, map[string][]byte{"p/010": []byte("stale"), "p/011": []byte("x"), "p/zzz": []byte("extra")})
	start := time.Now()
	r, err = VerifyReplication(ctx, cfg, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys := func(ds []Difference) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.Key)
		}
		return strings.Join(s, ",")
	}
	if r.InSync || keys(r.Missing) != "001,002,003" || keys(r.Different) != "010,011" || keys(r.Extra) != "zzz" {
		t.Fatalf("missing %s, different %s, extra %s", keys(r.Missing), keys(r.Different), keys(r.Extra))
	}
	// The oldest unreplicated change is the source's write of the
	// objects, before this test's changes to the replica.
	if r.OldestUnreplicated == nil || r.OldestUnreplicated.After(start) || r.Lag <= 0 {
		t.Fatalf("lag %v oldest %v", r.Lag, r.OldestUnreplicated)
	}
	// A tolerance longer than the lag accepts the missing and different
	// objects, but not the extra one.
	r, _ = VerifyReplication(ctx, cfg, time.Hour, time.Now())
	if r.Tolerated != 5 || r.InSync {
		t.Fatalf("tolerated %d in sync %v", r.Tolerated, r.InSync)
	}

	if _, err := VerifyReplication(ctx, &plan.Store{Name: "x", Kind: "s3", URL: cfg.URL}, 0, time.Now()); !errors.Is(err, ErrNoReplica) {
		t.Fatalf("no replica: %v", err)
	}
}

// TestLargeObject: an object above the in-memory limit streams into the
// pack on backup and goes back as a multipart upload on restore.
func TestLargeObject(t *testing.T) {
	ctx := context.Background()
	info := testenv.S3(t)
	c := testenv.S3Client(t, info.Endpoint)
	bucket := testenv.NewBucket(t, info.Endpoint)
	r := ops.TestRunner(t, "", fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", testenv.S3URL(t, info.Endpoint, bucket, "")))
	big := bytes.Repeat([]byte("0123456789abcdef"), (bufferLimit+3<<20)/16)
	putAll(t, c, bucket, map[string][]byte{"video.mp4": big, "small": []byte("s")})
	m, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	if st := stats(t, m); st.CopiedBytes != int64(len(big))+1 {
		t.Fatalf("stats: %+v", st)
	}
	target := testenv.NewBucket(t, info.Endpoint)
	_, res, err := r.Restore(ctx, "media", ops.RestoreOptions{Target: testenv.S3URL(t, info.Endpoint, target, ""), Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	// The transfer manager uploads in parts only above its threshold, so
	// either check wording is right; the content check below is the proof.
	if !res.Items[0].Verified || !strings.HasPrefix(res.Items[0].Checked, "2 objects: keys") {
		t.Fatalf("checked: %q", res.Items[0].Checked)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(target), Key: aws.String("video.mp4")})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(out.Body)
	out.Body.Close()
	if md5hex(got.Bytes()) != md5hex(big) {
		t.Fatalf("restored %d bytes, content differs", got.Len())
	}
}
