package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a process started in the foreground as a direct child of the test binary and
// reaped by Wait, so it never lingers as a zombie.
type server struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, valid once done is closed
}

// startServer runs argv with output appended to logPath. cred, if not nil, is the user the
// process runs as. The process gets deathSig when the test binary dies.
func startServer(name, logPath string, cred *syscall.Credential, deathSig syscall.Signal, argv ...string) (*server, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true, // a ^C meant for go test does not reach the server first
		Pdeathsig:  deathSig,
		Credential: cred,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to timeout for the process to exit, then kills it.
func (s *server) stop(sig syscall.Signal, timeout time.Duration) error {
	if !s.running() {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("stop %s: did not exit within %v of %v, killed%s", s.name, timeout, sig, s.logTail())
}

// waitReady polls ready until it succeeds, the process exits or timeout passes.
func (s *server) waitReady(timeout time.Duration, ready func() error) error {
	err := Poll(timeout, func() error {
		if !s.running() {
			return errExited
		}
		return ready()
	})
	if err == nil {
		return nil
	}
	if !s.running() {
		return fmt.Errorf("start %s: exited (%v)%s", s.name, s.err, s.logTail())
	}
	return fmt.Errorf("start %s: %w%s", s.name, err, s.logTail())
}

var errExited = errors.New("process exited")

// addrInUse reports whether the server's log says its port was taken.
func (s *server) addrInUse() bool {
	b, _ := os.ReadFile(s.log)
	return bytes.Contains(b, []byte("Address already in use"))
}

func (s *server) logTail() string { return logTail(s.log) }

// logTail returns the last lines of a log file, formatted to follow an error message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return fmt.Sprintf("\n---- last lines of %s ----\n%s\n----", path, strings.Join(lines, "\n"))
}

// postgresUser is who PostgreSQL programs run as: the postgres OS user when the tests run as
// root (PostgreSQL refuses root), else the current user.
type osUser struct {
	cred     *syscall.Credential // nil: run as ourselves
	uid, gid int
}

func postgresUser() (osUser, error) {
	if os.Geteuid() != 0 {
		return osUser{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return osUser{}, fmt.Errorf("look up postgres OS user (PostgreSQL refuses to run as root): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return osUser{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

// run runs a short command as u and returns its combined output in the error.
func (u osUser) run(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(argv[0]), err, bytes.TrimSpace(out))
	}
	return nil
}

// chownTree gives u everything under dir.
func (u osUser) chownTree(dir string) error {
	if u.cred == nil {
		return nil
	}
	return filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, u.uid, u.gid)
	})
}

// canReach reports whether u can traverse every directory down to dir.
func (u osUser) canReach(dir string) bool {
	if u.cred == nil {
		return true
	}
	return u.run("/usr/bin/test", "-x", dir) == nil
}

// makeReachable adds o+x to the ancestors of dir that lack it, but only inside the system
// temporary directory or .testenv, which belong to the tests; elsewhere it returns an error.
func makeReachable(u osUser, dir string) error {
	if u.canReach(dir) {
		return nil
	}
	var allowed []string
	if tmp, err := filepath.EvalSymlinks(os.TempDir()); err == nil {
		allowed = append(allowed, tmp)
	}
	if root, err := ModuleRoot(); err == nil {
		allowed = append(allowed, filepath.Join(root, ".testenv"))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for d := abs; ; d = filepath.Dir(d) {
		inside := false
		for _, a := range allowed {
			if d != a && strings.HasPrefix(d, a+string(filepath.Separator)) {
				inside = true
			}
		}
		if !inside {
			break
		}
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
	}
	if !u.canReach(dir) {
		return fmt.Errorf("the postgres OS user cannot reach %s: put it under testenv.TempDir(t)", dir)
	}
	return nil
}
