package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"testing"

	"filippo.io/age"
)

func newKey(t *testing.T) (*age.X25519Identity, []age.Recipient) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, []age.Recipient{id.Recipient()}
}

func seal(t *testing.T, rcpt []age.Recipient, plain []byte) ([]byte, Sums) {
	t.Helper()
	var buf bytes.Buffer
	s, err := Seal(&buf, rcpt, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(s, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), s.Sums()
}

func open(stored []byte, ids []age.Identity, expect *Sums) ([]byte, error) {
	o, err := Open(bytes.NewReader(stored), ids, expect)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func testData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b[:n/2]) // half random, half compressible
	return b
}

func TestRoundTrip(t *testing.T) {
	id, rcpt := newKey(t)
	for _, n := range []int{0, 1, 64 << 10, 3<<20 + 7} {
		plain := testData(n)
		stored, sums := seal(t, rcpt, plain)
		if sums.PlainSize != int64(n) || sums.StoredSize != int64(len(stored)) {
			t.Fatalf("n=%d: sums %+v, stored %d", n, sums, len(stored))
		}
		got, err := open(stored, []age.Identity{id}, &sums)
		if err != nil {
			t.Fatalf("n=%d: open: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: plaintext differs", n)
		}
	}
}

func TestCompresses(t *testing.T) {
	_, rcpt := newKey(t)
	plain := bytes.Repeat([]byte("user,profile,message,match\n"), 100000)
	stored, _ := seal(t, rcpt, plain)
	if len(stored)*20 > len(plain) {
		t.Fatalf("stored %d bytes for %d bytes of repetitive text: not compressed", len(stored), len(plain))
	}
}

func TestErrIntegrity(t *testing.T) {
	id, rcpt := newKey(t)
	plain := testData(1 << 20)
	stored, sums := seal(t, rcpt, plain)
	ids := []age.Identity{id}

	t.Run("FlippedByte", func(t *testing.T) {
		for _, off := range []int{len(stored) / 2, len(stored) - 1, 200} {
			bad := bytes.Clone(stored)
			bad[off] ^= 0x01
			if _, err := open(bad, ids, &sums); !errors.Is(err, ErrIntegrity) {
				t.Fatalf("flip at %d: got %v, want ErrIntegrity", off, err)
			}
		}
	})
	t.Run("Truncated", func(t *testing.T) {
		for _, n := range []int{len(stored) - 1, len(stored) - 65536, 300} {
			if _, err := open(stored[:n], ids, &sums); !errors.Is(err, ErrIntegrity) {
				t.Fatalf("truncated to %d: got %v, want ErrIntegrity", n, err)
			}
		}
	})
	t.Run("TrailingGarbage", func(t *testing.T) {
		bad := append(bytes.Clone(stored), 'x')
		if _, err := open(bad, ids, &sums); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("got %v, want ErrIntegrity", err)
		}
	})
	t.Run("ManifestMismatch", func(t *testing.T) {
		wrong := sums
		wrong.PlainSHA256 = "00"
		if _, err := open(stored, ids, &wrong); !errors.Is(err, ErrIntegrity) {
			t.Fatalf("got %v, want ErrIntegrity", err)
		}
	})
}

func TestErrWrongKey(t *testing.T) {
	_, rcpt := newKey(t)
	other, _ := newKey(t)
	stored, sums := seal(t, rcpt, testData(1000))
	if _, err := open(stored, []age.Identity{other}, &sums); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: got %v", err)
	}
	if _, err := open(stored, nil, &sums); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("no key: got %v", err)
	}
}

func TestKeys(t *testing.T) {
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := ParseRecipients([]string{kp.Recipient})
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/key"
	if err := os.WriteFile(path, kp.IdentityFile("now"), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, err := LoadIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	stored, sums := seal(t, rcpt, []byte("hello"))
	got, err := open(stored, ids, &sums)
	if err != nil || string(got) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := ParseRecipients([]string{"age1nope"}); err == nil {
		t.Fatal("bad recipient accepted")
	}
	if _, err := LoadIdentities(path + ".missing"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("missing identity file: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	id, _ := age.GenerateX25519Identity()
	var buf bytes.Buffer
	s, _ := Seal(&buf, []age.Recipient{id.Recipient()}, 0)
	s.Write([]byte("seed"))
	s.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		// Must never panic; any error is fine.
		open(b, []age.Identity{id}, nil)
	})
}
