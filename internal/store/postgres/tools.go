package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// findTool locates pg_dump or pg_restore for a server major version:
// binDir if configured, else the Debian/Ubuntu layout, else PATH. A tool
// older than the server cannot read its catalogs, so it is refused. It
// returns the tool's own major version too (running a tool costs tens of
// milliseconds; a backup would otherwise ask twice).
func findTool(ctx context.Context, name, binDir string, major int) (string, int, error) {
	var candidates []string
	if binDir != "" {
		candidates = append(candidates, filepath.Join(binDir, name))
	} else {
		candidates = append(candidates,
			fmt.Sprintf("/usr/lib/postgresql/%d/bin/%s", major, name),
			fmt.Sprintf("/usr/pgsql-%d/bin/%s", major, name))
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	var seen []string
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		v, err := toolMajor(ctx, c)
		if err != nil {
			seen = append(seen, fmt.Sprintf("%s (%v)", c, err))
			continue
		}
		if v >= major {
			return c, v, nil
		}
		seen = append(seen, fmt.Sprintf("%s is version %d", c, v))
	}
	hint := fmt.Sprintf("install postgresql-client-%d, or set pg_bin_dir in the plan", major)
	if len(seen) > 0 {
		return "", 0, fmt.Errorf("no %s for PostgreSQL %d: %s (hint: %s)", name, major, strings.Join(seen, "; "), hint)
	}
	return "", 0, fmt.Errorf("no %s for PostgreSQL %d found (hint: %s)", name, major, hint)
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

func toolMajor(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return 0, err
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unrecognised version %q", strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}

// command prepares a PostgreSQL client tool that stops gently (SIGTERM,
// then SIGKILL after 10 s) when ctx is cancelled, and keeps the tail of
// its stderr for error messages.
func command(ctx context.Context, path string, env []string, args ...string) (*exec.Cmd, *tailBuffer) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	tail := &tailBuffer{max: 4096}
	cmd.Stderr = tail
	return cmd, tail
}

// toolError explains a failed tool run with the end of what it said.
func toolError(name string, err error, tail *tailBuffer) error {
	msg := strings.TrimSpace(tail.String())
	var ee *exec.ExitError
	if errors.As(err, &ee) && msg != "" {
		return fmt.Errorf("%s: exit %d: %s", name, ee.ExitCode(), msg)
	}
	if msg != "" {
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if t.buf.Len() > 2*t.max {
		b := t.buf.Bytes()[t.buf.Len()-t.max:]
		t.buf.Reset()
		t.buf.Write(b)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.buf.Bytes()
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return string(b)
}

// stdbufArgs makes a tool write its standard output in 1 MiB blocks
// when coreutils' stdbuf is there, and leaves the command as it is when
// not. glibc gives a pipe a 4 KiB stdio buffer, so pg_dump writes a
// 1 GiB dump in a quarter of a million write(2) calls and the reader
// wakes up for as many reads. On the bench database that was 1.5 of the
// backup's 14 core-seconds (pg_dump 2.0 → 1.25, its reader 1.0 → 0.15);
// on two cores the backup is CPU-bound, so it is wall time too. The
// bytes written are the same: only the size of the writes changes.
func stdbufArgs(path string, args []string) (string, []string) {
	sb := stdbufPath()
	if sb == "" {
		return path, args
	}
	return sb, append([]string{"-o1M", path}, args...)
}

// stdbufPath is the stdbuf that works here, or "", found once per
// process (Backup starts the search while it connects).
var stdbufPath = sync.OnceValue(findStdbuf)

// findStdbuf looks for stdbuf on PATH and tries it on a harmless command:
// stdbuf works by preloading a library, and a coreutils without it (or
// a stdbuf that is not coreutils') should fail here, not in a backup.
func findStdbuf() string {
	p, err := exec.LookPath("stdbuf")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if exec.CommandContext(ctx, p, "-o1M", "true").Run() != nil {
		return ""
	}
	return p
}
