package plan

import (
	"net/url"
	"strings"
)

// Secret is a string that may carry a credential (a URL with a password,
// a token). It prints as "<redacted>" — or, for URLs, with the password
// masked — in every output format, so `plan show`, logs and JSON never leak
// it. Use Reveal to get the value.
type Secret string

// Reveal returns the value itself.
func (s Secret) Reveal() string { return string(s) }

// String masks the secret. URLs keep their shape so operators can still see
// which host is meant.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(string(s)); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		for k := range q {
			if lk := strings.ToLower(k); strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	return "<redacted>"
}

// MarshalYAML masks the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText masks the secret (JSON).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
