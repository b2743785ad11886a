package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/testenv"
)

// TestObjectLock backs up into a repository in an Object Lock bucket in
// compliance mode: every object carries the retention, S3 refuses to
// delete any version of it, and retention keeps the backups and says why
// instead of trying.
func TestObjectLock(t *testing.T) {
	ctx := context.Background()
	info := testenv.S3(t)
	c := testenv.S3Client(t, info.Endpoint)
	lockBucket := testenv.NewObjectLockBucket(t, info.Endpoint)
	src := testenv.NewBucket(t, info.Endpoint)
	r := ops.TestRunner(t, testenv.S3URL(t, info.Endpoint, lockBucket, "repo"),
		fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", testenv.S3URL(t, info.Endpoint, src, "")))
	rc := r.Plan.Repositories["primary"]
	rc.ObjectLock = &plan.ObjectLock{Mode: "compliance", Days: 1}
	r.Plan.Repositories["primary"] = rc

	putAll(t, c, src, map[string][]byte{"a": []byte("1"), "b": []byte("2")})
	start := time.Now()
	m1, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	putAll(t, c, src, map[string][]byte{"a": []byte("changed")})
	m2, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	if m1.ObjectLock != "compliance" || m1.RetainUntil == nil ||
		m1.RetainUntil.Before(start.Add(23*time.Hour)) || m1.RetainUntil.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("manifest lock: %q until %v", m1.ObjectLock, m1.RetainUntil)
	}

	// Every object the backup wrote is locked, and S3 enforces it.
	keys := []string{
		"repo/backups/media/" + m1.ID + "/manifest.json",
		"repo/backups/media/" + m1.ID + "/" + IndexArtifact + repo.ArtifactSuffix,
		"repo/backups/media/" + m1.ID + "/" + CatalogArtifact + repo.PlainSuffix,
		"repo/pool/media/" + m1.Pool[0].Name + repo.ArtifactSuffix,
	}
	for _, k := range keys {
		ret, err := c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(lockBucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("retention of %s: %v", k, err)
		}
		if ret.Retention.Mode != types.ObjectLockRetentionModeCompliance || !ret.Retention.RetainUntilDate.Equal(*m1.RetainUntil) {
			t.Fatalf("%s: retention %s until %v, manifest says %v", k, ret.Retention.Mode, ret.Retention.RetainUntilDate, m1.RetainUntil)
		}
		vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(lockBucket), Prefix: aws.String(k)})
		if err != nil || len(vs.Versions) != 1 {
			t.Fatalf("versions of %s: %v %v", k, vs, err)
		}
		_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(lockBucket), Key: aws.String(k),
			VersionId: vs.Versions[0].VersionId, BypassGovernanceRetention: aws.Bool(true)})
		if err == nil {
			t.Fatalf("S3 deleted locked %s", k)
		}
	}

	// Retention keeps both backups although the policy keeps only one,
	// and says why; nothing is attempted, so nothing fails.
	r.Plan.Retention = plan.Retention{KeepLast: 1}
	for _, dry := range []bool{true, false} {
		reps, err := r.ApplyRetention(ctx, dry)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range reps {
			if len(s.Errors) > 0 {
				t.Fatalf("retention errors: %v", s.Errors)
			}
			if s.Method != "objects" {
				continue
			}
			for _, d := range s.Decisions {
				if d.ID == m1.ID {
					found = true
					if !d.Keep || !strings.Contains(strings.Join(d.Reasons, ","), "object lock (compliance) until ") {
						t.Fatalf("older backup: %+v", d)
					}
				}
			}
			if s.Removed != 0 || s.Kept != 2 {
				t.Fatalf("dry run %v: %+v", dry, s)
			}
		}
		if !found {
			t.Fatalf("no decision for %s in %+v", m1.ID, reps)
		}
	}

	// Asked directly, the repository refuses before S3 has to.
	rp, err := r.OpenRepo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	if err := rp.Delete(ctx, m2); !errors.Is(err, repo.ErrRetained) || !strings.Contains(err.Error(), "object lock (compliance) until") {
		t.Fatalf("delete locked backup: %v", err)
	}
	if all, _ := rp.Backups(ctx, "media"); len(all) != 2 {
		t.Fatalf("%d backups left", len(all))
	}
}
