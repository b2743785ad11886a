package envelope

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/testenv"
)

// TestDecodeWithCLIs proves the envelope is plain age around plain zstd:
// a stream of several frames decodes with `age -d | zstd -d`.
func TestDecodeWithCLIs(t *testing.T) {
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, kp.IdentityFile(time.Now().String()), 0o600)
	rcpt, _ := ParseRecipients([]string{kp.Recipient})

	plain := make([]byte, 3*frameSize+12345) // several frames
	rand.Read(plain[:frameSize])
	var stored bytes.Buffer
	s, err := Seal(&stored, rcpt, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(plain)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "artifact.zst.age")
	os.WriteFile(in, stored.Bytes(), 0o600)
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+testenv.Bin(t, "age")+" -d -i "+key+" "+in+" | "+testenv.Bin(t, "zstd")+" -d -q")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("age -d | zstd -d: %v: %s", err, errb.String())
	}
	if !bytes.Equal(out.Bytes(), plain) {
		t.Fatalf("CLI decoded %d bytes, want %d identical bytes", out.Len(), len(plain))
	}
}
