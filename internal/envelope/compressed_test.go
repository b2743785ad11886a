package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// TestSealCompressed: a stream compressed elsewhere (as PostgreSQL's
// server-side zstd does) is stored in the same format as Seal writes, and
// its sums describe the plaintext.
func TestSealCompressed(t *testing.T) {
	id, rcpt := newKey(t)
	plain := testData(3 << 20)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	compressed := enc.EncodeAll(plain, nil)
	var stored bytes.Buffer
	s, err := SealCompressed(&stored, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(compressed); i += 10000 { // in pieces, as CopyData arrives
		if _, err := s.Write(compressed[i:min(i+10000, len(compressed))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sums := s.Sums()
	want := sha256.Sum256(plain)
	if sums.PlainSize != int64(len(plain)) || sums.PlainSHA256 != hex.EncodeToString(want[:]) || sums.StoredSize != int64(stored.Len()) {
		t.Fatalf("sums %+v", sums)
	}
	got, err := open(stored.Bytes(), []age.Identity{id}, &sums)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %v", err)
	}
	t.Run("NotZstd", func(t *testing.T) {
		s, _ := SealCompressed(&bytes.Buffer{}, rcpt)
		s.Write([]byte(strings.Repeat("not zstd at all ", 1000)))
		if err := s.Close(); err == nil || !strings.Contains(err.Error(), "not valid zstd") {
			t.Fatalf("got %v", err)
		}
	})
}
