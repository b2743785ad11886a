package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
)

// TestRunner is for tests of any package: it writes a plan with a fresh
// age key pair into a temporary directory, with repository primary at
// repoURL (a mem://, file:// or s3:// URL; "" makes a file repository in
// the directory) and stores (YAML lines indented by two spaces, the body
// of `stores:`), initialises the repository and returns a Runner for it.
func TestRunner(t testing.TB, repoURL, stores string) *Runner {
	t.Helper()
	dir := t.TempDir()
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "age.key")
	if err := os.WriteFile(keyFile, kp.IdentityFile(time.Now().Format(time.RFC3339)), 0o600); err != nil {
		t.Fatal(err)
	}
	if repoURL == "" {
		repoURL = "file://" + filepath.Join(dir, "repo")
	}
	yaml := fmt.Sprintf(`version: 1
name: test
encryption:
  recipients: [%q]
  identity_file: %s
repositories:
  primary: {url: %q}
stores:
%s
`, kp.Recipient, keyFile, repoURL, stores)
	path := filepath.Join(dir, "linkdr.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := plan.Load(path)
	if err != nil {
		t.Fatalf("test plan: %v\n%s", err, yaml)
	}
	r, _, err := repo.Init(context.Background(), p.Repositories["primary"].URL, p.Encryption.Recipients)
	if err != nil {
		t.Fatalf("init test repository: %v", err)
	}
	r.Close()
	return &Runner{Plan: p, LeaseTTL: 30 * time.Second}
}
