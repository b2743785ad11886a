package drill_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/ops"
	_ "github.com/linkapp/linkdr/internal/store/s3bucket"
	"github.com/linkapp/linkdr/internal/testenv"
)

func countPrefix(t *testing.T, c *s3.Client, bucket, prefix string) int {
	t.Helper()
	n := 0
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}

// TestS3Drill drills an S3 store (the real S3 server from testenv): the
// copy goes to a scratch prefix outside the store's, is checked object by
// object, and is deleted; a bucket emptied before the backup fails.
func TestS3Drill(t *testing.T) {
	info := testenv.S3(t)
	bucket := testenv.NewBucket(t, info.Endpoint)
	c := testenv.S3Client(t, info.Endpoint)
	ctx := context.Background()
	for i := range 150 {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("media/u/%03d.jpg", i)),
			Body: bytes.NewReader([]byte(strings.Repeat("x", i)))})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := ops.TestRunner(t, "", fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", testenv.S3URL(t, info.Endpoint, bucket, "media")))
	if _, err := r.Backup(ctx, "media", ""); err != nil {
		t.Fatal(err)
	}
	dr := &drill.Runner{Ops: r}
	rep, err := dr.Restore(ctx, drill.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Stores[0]
	if !s.OK || !s.Integrity.OK || s.Integrity.Items[0].Rows != 150 || !strings.Contains(s.Integrity.Summary, "150 objects: keys, sizes and MD5s match") {
		t.Fatalf("store: %+v", s)
	}
	if !strings.Contains(s.Scratch, "/linkdr-drill-") || countPrefix(t, c, bucket, "linkdr-drill-") != 0 {
		t.Fatalf("scratch %s not cleaned up", s.Scratch)
	}
	if len(s.Canaries) != 1 || s.Canaries[0].Survived || countPrefix(t, c, bucket, "media/linkdr-canary/") != 1 {
		t.Fatalf("canaries: %+v", s.Canaries)
	}

	// 120 of the 150 objects are deleted by mistake before the next backup.
	for i := range 120 {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("media/u/%03d.jpg", i))}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = dr.Restore(ctx, drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	s = rep.Stores[0]
	// 30 objects and the first drill's canary.
	want := fmt.Sprintf("objects: 31 objects in backup %s, 150 in the previous backup", m.ID)
	if s.Phase != "history" || !strings.Contains(s.Error, want) || countPrefix(t, c, bucket, "linkdr-drill-") != 0 {
		t.Fatalf("phase %q error %q, want %q", s.Phase, s.Error, want)
	}
}
