package s3bucket

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	// Unpack every pack the backup uses, oldest first, so newer versions
	// of a key overwrite older ones, then keep only what the index lists.
	var script strings.Builder
	fmt.Fprintf(&script, "set -eo pipefail\ncd %s\n", out)
	for _, a := range m.Pool {
		fmt.Fprintf(&script, "%s -d -i %s %s | %s -d -q | tar x --warning=no-unknown-keyword\n", age, key, filepath.Join(repoDir, "pool", "media", a.Name+repo.ArtifactSuffix), zstd)
	}
	fmt.Fprintf(&script, "%s -d -i %s %s | %s -d -q > index.jsonl\n", age, key, filepath.Join(repoDir, "backups", "media", m.ID, IndexArtifact+repo.ArtifactSuffix), zstd)
	fmt.Fprintf(&script, "%s -d -q -c %s | wc -l\n", zstd, filepath.Join(repoDir, "backups", "media", m.ID, CatalogArtifact+repo.PlainSuffix))
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Env = os.Environ()
	got, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "2" {
		t.Fatalf("by-hand read failed: %v\n%s\n%s", err, script.String(), got)
	}
	for k, want := range map[string]string{"a/1.txt": "one", "b/2.txt": "TWO"} {
		b, err := os.ReadFile(filepath.Join(out, k))
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q %v", k, b, err)
		}
	}
	idx, _ := os.ReadFile(filepath.Join(out, "index.jsonl"))
	if !strings.Contains(string(idx), `"key":"b/2.txt"`) || strings.Count(string(idx), "\n") != 2 {
		t.Fatalf("index: %s", idx)
	}
}
