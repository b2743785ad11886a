package testenv

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hint is appended to every "server missing" failure.
const Hint = `run "scripts/testenv.sh up" (make test does it)`

// EnvFile is the name of the file scripts/testenv.sh writes inside the test environment
// directory.
const EnvFile = "env"

var loaded struct {
	once sync.Once
	path string            // the env file read, if any
	vals map[string]string // its values
	err  error             // why it could not be read
}

func load() {
	loaded.once.Do(func() {
		loaded.vals = map[string]string{}
		dir := os.Getenv("LINKDR_TESTENV_DIR")
		if dir == "" {
			root, err := ModuleRoot()
			if err != nil {
				loaded.err = err
				return
			}
			dir = filepath.Join(root, ".testenv")
		}
		loaded.path = filepath.Join(dir, EnvFile)
		vals, err := ParseEnvFile(loaded.path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			loaded.err = err
		}
		if vals != nil {
			loaded.vals = vals
		}
	})
}

// ParseEnvFile reads KEY=value lines as written by scripts/testenv.sh. Blank lines and lines
// starting with # are ignored; values are taken verbatim (no quotes, no expansion).
func ParseEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("parse %s:%d: want KEY=value, got %q", path, n, line)
		}
		vals[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return vals, nil
}

// ModuleRoot returns the directory holding go.mod, found by walking up from the working
// directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Lookup returns the value of key from the process environment or, when the process does
// not set it (or sets it empty), from .testenv/env.
func Lookup(key string) (string, bool) {
	if v := os.Getenv(key); v != "" {
		return v, true
	}
	load()
	v, ok := loaded.vals[key]
	return v, ok && v != ""
}

// Get returns the value of key (see [Lookup]) and fails the test when it is not set.
func Get(t testing.TB, key string) string {
	t.Helper()
	v, ok := Lookup(key)
	if !ok {
		t.Fatalf("testenv: %s is not set: %s%s", key, Hint, loadProblem())
	}
	return v
}

func loadProblem() string {
	load()
	switch {
	case loaded.err != nil:
		return fmt.Sprintf(" (%v)", loaded.err)
	case loaded.path != "":
		if _, err := os.Stat(loaded.path); err != nil {
			return fmt.Sprintf(" (no %s)", loaded.path)
		}
	}
	return ""
}

// Environ returns the process environment with every variable of .testenv/env added that the
// process does not set, for handing to subprocesses (the linkdr binary, testscript).
func Environ() []string {
	load()
	env := os.Environ()
	keys := make([]string, 0, len(loaded.vals))
	for k := range loaded.vals {
		if os.Getenv(k) == "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+loaded.vals[k])
	}
	return env
}

// Dir returns the test environment directory (.testenv at the module root).
func Dir(t testing.TB) string {
	t.Helper()
	return Get(t, "LINKDR_TESTENV_DIR")
}

// pgTools are looked up in the PostgreSQL 15 bin directory.
var pgTools = map[string]bool{
	"pg_dump": true, "pg_restore": true, "pg_dumpall": true, "psql": true, "initdb": true,
	"postgres": true, "pg_ctl": true, "pg_basebackup": true, "pg_isready": true,
	"pg_waldump": true, "pg_controldata": true, "pg_receivewal": true, "pg_verifybackup": true,
	"pg_rewind": true, "pg_archivecleanup": true, "pg_resetwal": true, "pgbench": true,
}

// Bin returns the path of an external tool: age, age-keygen, zstd, pg_dump, pg_restore,
// psql (and the other PostgreSQL 15 programs), pgbackrest, redis-cli, redis-server,
// prometheus, promtool, chromium, dig, curl, named, etcd, kube-apiserver, versitygw.
// It looks at LINKDR_TEST_<NAME>_BIN (upper case, dashes as underscores), then the
// PostgreSQL bin directory for PostgreSQL programs, then PATH, and fails the test when the
// tool is nowhere.
func Bin(t testing.TB, name string) string {
	t.Helper()
	key := "LINKDR_TEST_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_BIN"
	if v, ok := Lookup(key); ok {
		if _, err := os.Stat(v); err == nil {
			return v
		}
	}
	if pgTools[name] {
		dir, ok := Lookup("LINKDR_TEST_PG_BINDIR")
		if !ok {
			dir = defaultPGBinDir
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("testenv: %s not found (%s is not set and it is not on PATH): %s", name, key, Hint)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

var ports struct {
	mu    sync.Mutex
	given map[int]bool
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that this process
// has not handed out before.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

func freePort() (int, error) {
	ports.mu.Lock()
	defer ports.mu.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports.given[p] {
			ports.given[p] = true
			return p, nil
		}
	}
	return 0, errors.New("find free port: no new port after 100 tries")
}

// Poll calls cond until it returns nil, starting at 10 ms intervals and backing off to
// 250 ms, and returns the last error if timeout passes first. It is safe to call from any
// goroutine.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(wait)
		wait = min(wait*3/2, 250*time.Millisecond)
	}
}

// WaitFor polls cond like [Poll] and fails the test with cond's last error on timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("testenv: wait: %v", err)
	}
}

// uniqueName returns prefix (or the test name) made safe for DNS labels, bucket and database
// names — lower case letters, digits and sep — followed by sep and 8 random hex digits, at
// most maxLen long.
func uniqueName(t testing.TB, prefix string, sep byte, maxLen int) string {
	if prefix == "" {
		prefix = t.Name()
	}
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && s[len(s)-1] != sep {
				b.WriteByte(sep)
			}
		}
	}
	base := strings.Trim(b.String(), string(sep))
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = "t" + string(sep) + base
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	suffix := string(sep) + hex.EncodeToString(rnd[:])
	if len(base) > maxLen-len(suffix) {
		base = strings.TrimRight(base[:maxLen-len(suffix)], string(sep))
	}
	return base + suffix
}
