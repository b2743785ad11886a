package s3bucket

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/testenv"
)

// TestByHand reads a backup with age, zstd, jq-free shell and tar only,
// as docs/format.md describes: the index lists the objects, each pack
// unpacks into files named by key.
func TestByHand(t *testing.T) {
	ctx := context.Background()
	info := testenv.S3(t)
	c := testenv.S3Client(t, info.Endpoint)
	bucket := testenv.NewBucket(t, info.Endpoint)
	r := ops.TestRunner(t, "", fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", testenv.S3URL(t, info.Endpoint, bucket, "up")))
	// Versioned, so the index records which version was copied.
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	putAll(t, c, bucket, map[string][]byte{"up/a/1.txt": []byte("one"), "up/b/2.txt": []byte("two")})
	if _, err := r.Backup(ctx, "media", ""); err != nil {
		t.Fatal(err)
	}
	putAll(t, c, bucket, map[string][]byte{"up/b/2.txt": []byte("TWO")})
	m, err := r.Backup(ctx, "media", "")
	if err != nil {
		t.Fatal(err)
	}
	repoDir := strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")
	key := r.Plan.Encryption.IdentityFile
	out := t.TempDir()
	age, zstd := testenv.Bin(t, "age"), testenv.Bin(t, "zstd")
	// Unpack every pack the backup uses into a directory of its own; the
	// index says which pack holds each key's content.
	var script strings.Builder
	fmt.Fprintf(&script, "set -eo pipefail\ncd %s\n", out)
	for _, a := range m.Pool {
		fmt.Fprintf(&script, "mkdir -p packs/%s && %s -d -i %s %s | %s -d -q | tar x --warning=no-unknown-keyword -C packs/%s\n",
			a.Name, age, key, filepath.Join(repoDir, "pool", "media", a.Name+repo.ArtifactSuffix), zstd, a.Name)
	}
	fmt.Fprintf(&script, "%s -d -i %s %s | %s -d -q > index.jsonl\n", age, key, filepath.Join(repoDir, "backups", "media", m.ID, IndexArtifact+repo.ArtifactSuffix), zstd)
	fmt.Fprintf(&script, "%s -d -q -c %s | wc -l\n", zstd, filepath.Join(repoDir, "backups", "media", m.ID, CatalogArtifact+repo.PlainSuffix))
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = os.Environ()
	got, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "2" {
		t.Fatalf("by-hand read failed: %v\n%s\n%s", err, script.String(), got)
	}
	idx, _ := os.ReadFile(filepath.Join(out, "index.jsonl"))
	contents := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(idx)), "\n") {
		var e Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("index line %q: %v", line, err)
		}
		b, err := os.ReadFile(filepath.Join(out, "packs", e.Pack, e.Key))
		if err != nil || md5hex(b) != e.MD5 {
			t.Fatalf("%s in pack %s: %q %v", e.Key, e.Pack, b, err)
		}
		contents[e.Key] = string(b)
	}
	if !reflect.DeepEqual(contents, map[string]string{"a/1.txt": "one", "b/2.txt": "TWO"}) {
		t.Fatalf("by hand: %v", contents)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("up/b/2.txt")})
	if err != nil || aws.ToString(head.VersionId) == "" || !strings.Contains(string(idx), `"version_id":"`+aws.ToString(head.VersionId)+`"`) {
		t.Fatalf("index does not record version %v of b/2.txt: %s (%v)", aws.ToString(head.VersionId), idx, err)
	}
}
