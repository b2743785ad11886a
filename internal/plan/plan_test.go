package plan

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// expectations reads the "# want: …" (errors) and "# warn: …" (warnings)
// header lines of a fixture. Each must be a substring of one problem.
func expectations(t *testing.T, data []byte) (want, warn []string) {
	t.Helper()
	for _, line := range strings.Split(string(data), "\n") {
		if s, ok := strings.CutPrefix(line, "# want: "); ok {
			want = append(want, s)
		}
		if s, ok := strings.CutPrefix(line, "# warn: "); ok {
			warn = append(warn, s)
		}
	}
	return want, warn
}

func matchAll(t *testing.T, kind string, problems []Problem, want []string) {
	t.Helper()
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			if strings.Contains(g, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing %s %q in:\n  %s", kind, w, strings.Join(got, "\n  "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d %ss, want %d:\n  %s", len(got), kind, len(want), strings.Join(got, "\n  "))
	}
}

func TestFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	t.Chdir("testdata")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			want, warn := expectations(t, data)
			p, warnings, err := Load(name)
			matchAll(t, "warning", warnings, warn)
			if strings.HasSuffix(name, ".good.yaml") {
				if err != nil {
					t.Fatalf("good fixture rejected: %v", err)
				}
				if p.Stores["users-db"].Repository != "primary" || p.Objectives.RTO.D() != 4*time.Hour {
					t.Fatalf("defaults not applied: %+v", p)
				}
				return
			}
			var inv *InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("bad fixture: got %v, want *InvalidError", err)
			}
			matchAll(t, "error", inv.Problems, want)
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "linkdr init") {
		t.Fatalf("got %v", err)
	}
}

func TestRelativeRepositoryResolvesAgainstPlan(t *testing.T) {
	p, _, err := Load("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata/repo")
	if got := p.Repositories["primary"].URL; got != "file://"+abs {
		t.Fatalf("url %q, want file://%s", got, abs)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("LINKDR_TEST_UNSET_PASSWORD", "s3cr3t")
	t.Chdir("testdata")
	p, _, err := Load("env.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Stores["users-db"].URL.Reveal(); got != "postgres://u:s3cr3t@h/" {
		t.Fatalf("url %q", got)
	}
}

// TestElideSecrets marshals a whole plan and finds no secret in it.
func TestElideSecrets(t *testing.T) {
	t.Setenv("LINKDR_TEST_UNSET_PASSWORD", "s3cr3t-value")
	t.Chdir("testdata")
	p, _, err := Load("env.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(p)
	y, _ := yaml.Marshal(p)
	for _, out := range []string{string(j), string(y), p.Stores["users-db"].URL.String()} {
		if strings.Contains(out, "s3cr3t-value") {
			t.Fatalf("secret leaked: %s", out)
		}
		if !strings.Contains(out, "postgres://u:xxxxx@h/") {
			t.Fatalf("masked URL missing: %s", out)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"4h": 4 * time.Hour, "90m": 90 * time.Minute, "7y": 7 * 365 * 24 * time.Hour,
		"35d": 35 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour,
	} {
		got, err := ParseDuration(in)
		if err != nil || got.D() != want {
			t.Errorf("%s: got %v, %v", in, got.D(), err)
		}
	}
	for _, bad := range []string{"", "soon", "-1h", "7x", "y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]string{"10s": "10s", "30s": "30s", "2m30s": "2m30s", "1h0m10s": "1h0m10s", "2h": "2h", "90m": "1h30m"} {
		if d, _ := ParseDuration(in); d.String() != want {
			t.Errorf("%s prints as %s, want %s", in, d, want)
		}
	}
	for _, s := range []string{"4h", "90m", "7y", "35d", "2w", "1h30m", "5s", "10s", "30s", "2m30s", "1y2d3h"} {
		d, _ := ParseDuration(s)
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("%s prints as %s, which parses as %v, %v", s, d, back.D(), err)
		}
	}
}

func TestCronMaxInterval(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for spec, want := range map[string]time.Duration{
		"@hourly": time.Hour, "*/15 * * * *": 15 * time.Minute, "0 2 * * *": 24 * time.Hour,
		"0 9-17 * * 1-5": 64 * time.Hour, "@every 30s": 30 * time.Second,
	} {
		c, err := ParseCron(spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.MaxInterval(from); got != want {
			t.Errorf("%s: max interval %s, want %s", spec, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, err := Parse("fuzz.yaml", b)
		if err == nil && p == nil {
			t.Fatal("nil plan without error")
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error outside ErrInvalid: %v", err)
		}
	})
}
