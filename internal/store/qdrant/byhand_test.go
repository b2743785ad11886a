package qdrant_test

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

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// TestByHand restores a collection with age, zstd and curl only, as
// docs/format.md describes, into the OpenAPI-validating test server.
func TestByHand(t *testing.T) {
	ctx := context.Background()
	c := qdranttest.New(t, qdranttest.Options{APIKey: "k"})
	seed(c, "profiles", 120)
	r := runner(t, c.URL(), "    api_key: k\n")
	m, err := r.Backup(ctx, "vectors", "")
	if err != nil {
		t.Fatal(err)
	}
	want := c.Points("profiles")
	c.DeleteCollection("profiles")

	var st struct {
		Collections []struct {
			Snapshots []struct{ Artifact, Checksum string }
		}
	}
	json.Unmarshal(m.Stats, &st)
	snap := st.Collections[0].Snapshots[0]
	repoDir := strings.TrimPrefix(r.Plan.Repositories["primary"].URL, "file://")
	object := filepath.Join(repoDir, "backups", "vectors", m.ID, snap.Artifact+repo.ArtifactSuffix)
	file := filepath.Join(t.TempDir(), "profiles.snapshot")
	pipeline := fmt.Sprintf(`set -o pipefail
%s -d -i %s %s | %s -d -q > %s
echo "%s  %s" | sha256sum -c --quiet
%s -sS --fail-with-body -X POST -H 'api-key: k' -F 'snapshot=@%s' '%s/collections/profiles/snapshots/upload?priority=snapshot&checksum=%s'`,
		testenv.Bin(t, "age"), r.Plan.Encryption.IdentityFile, object, testenv.Bin(t, "zstd"), file,
		snap.Checksum, file,
		testenv.Bin(t, "curl"), file, c.URL(), snap.Checksum)
	cmd := exec.Command("bash", "-c", pipeline)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"result":true`) {
		t.Fatalf("by-hand restore failed: %v\n%s\n%s", err, pipeline, out)
	}
	if got := c.Points("profiles"); !reflect.DeepEqual(got, want) {
		t.Fatalf("by-hand restore has %d points, want %d", len(got), len(want))
	}
}
