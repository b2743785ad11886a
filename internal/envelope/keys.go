package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"filippo.io/age"
)

// ParseRecipients parses age public keys ("age1…") as written in a plan.
func ParseRecipients(keys []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for i, k := range keys {
		rs, err := age.ParseRecipients(strings.NewReader(strings.TrimSpace(k)))
		if err != nil || len(rs) != 1 {
			return nil, fmt.Errorf("recipient %d (%q): not an age public key; generate one with `linkdr init` or `age-keygen`", i+1, short(k))
		}
		out = append(out, rs[0])
	}
	return out, nil
}

// LoadIdentities reads an age identity file (as written by age-keygen or
// linkdr init). A missing file is reported as ErrWrongKey with the path, so
// the caller can tell the operator where the key was expected.
func LoadIdentities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no identity file configured: set encryption.identity_file in the plan or LINKDR_AGE_IDENTITY_FILE", ErrWrongKey)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: identity file %s does not exist: restore it from your key escrow or set LINKDR_AGE_IDENTITY_FILE", ErrWrongKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity file: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: identity file %s: %v", ErrWrongKey, path, err)
	}
	return ids, nil
}

// KeyPair is a freshly generated X25519 identity.
type KeyPair struct {
	Recipient string // public, goes into the plan
	Identity  string // private, goes into a 0600 file
}

// GenerateKeyPair makes a new age X25519 key pair.
func GenerateKeyPair() (KeyPair, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Recipient: id.Recipient().String(), Identity: id.String()}, nil
}

// IdentityFile renders a key pair the way age-keygen writes it, so the
// file works with the age CLI for by-hand restores.
func (k KeyPair) IdentityFile(created string) []byte {
	return []byte(fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", created, k.Recipient, k.Identity))
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
