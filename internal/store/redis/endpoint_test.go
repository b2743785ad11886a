package redis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := []struct {
		raw, pwFile string
		allowDB     bool
		addrs       string
		user, pass  string
		db          int
		cluster     clusterMode
		str         string
	}{
		{"redis://10.0.0.1:7000", "", false, "10.0.0.1:7000", "", "", -1, clusterAuto, "redis://10.0.0.1:7000"},
		{"redis://cache", "", false, "cache:6379", "", "", -1, clusterAuto, "redis://cache:6379"},
		{"redis://:s%40cret@h:1", "", false, "h:1", "", "s@cret", -1, clusterAuto, "redis://h:1"},
		{"redis://linkdr@h:1", pwFile, false, "h:1", "linkdr", "from-file", -1, clusterAuto, "redis://linkdr@h:1"},
		{"redis://u:inurl@h:1", pwFile, false, "h:1", "u", "inurl", -1, clusterAuto, "redis://u@h:1"},
		{"redis://a:1,[::1]:2,[fd00::3]", "", false, "a:1,[::1]:2,[fd00::3]:6379", "", "", -1, clusterYes, "redis://a:1,[::1]:2,[fd00::3]:6379"},
		{"redis://h:1?cluster=true", "", false, "h:1", "", "", -1, clusterYes, "redis://h:1?cluster=true"},
		{"redis://h:1/?cluster=false", "", false, "h:1", "", "", -1, clusterNo, "redis://h:1"},
		{"redis://h:1/5", "", true, "h:1", "", "", 5, clusterAuto, "redis://h:1/5"},
	}
	for _, c := range ok {
		t.Run(c.raw, func(t *testing.T) {
			e, err := parseEndpoint(c.raw, c.pwFile, c.allowDB)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(e.addrs, ","); got != c.addrs || e.username != c.user || e.password != c.pass || e.db != c.db || e.cluster != c.cluster {
				t.Fatalf("got %+v", e)
			}
			if e.String() != c.str {
				t.Fatalf("String() = %q, want %q", e.String(), c.str)
			}
		})
	}
	bad := map[string]string{
		"postgres://h:1":                "want redis://",
		"redis://h:1/2":                 "list databases under the store's databases:",
		"redis://h:1?timeout=3":         `unknown parameter "timeout"`,
		"redis://h:1?cluster=maybe":     `cluster="maybe"`,
		"redis://a:1,b:2?cluster=false": "several hosts but cluster=false",
		"redis://h:99999":               "bad port",
		"redis://a:1,,b:2":              "empty host",
		"redis://:secret@h:1?x=1":       `unknown parameter "x"`,
	}
	for raw, want := range bad {
		t.Run(raw, func(t *testing.T) {
			_, err := parseEndpoint(raw, "", false)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
	if _, err := parseEndpoint("redis://h:1/3?cluster=true", "", true); err == nil || !strings.Contains(err.Error(), "only database 0") {
		t.Fatalf("a cluster with database 3: err = %v", err)
	}
}
