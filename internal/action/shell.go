package action

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

func init() { register("shell", shell{}) }

// shell runs a command (through /bin/sh -c, or argv directly) with extra
// environment and a working directory. Its output goes to the journal,
// with the values of the variables named in secrets masked.
type shell struct{}

type shellStep struct {
	argv []string
	env  []string
	dir  string
}

func (shell) prepare(env *Env, p Params) (*shellStep, error) {
	s := &shellStep{dir: p.String("dir", "")}
	if s.dir != "" && env.Plan != nil {
		s.dir = env.Plan.Resolve(s.dir)
	}
	if args := p.Strings("args"); len(args) > 0 {
		s.argv = args
	} else {
		cmd, err := p.Required("command")
		if err != nil {
			return nil, fmt.Errorf("parameter command or args is required")
		}
		s.argv = []string{p.String("shell", "/bin/sh"), "-c", cmd}
	}
	s.env = os.Environ()
	for k, v := range p.Map("env") {
		s.env = append(s.env, k+"="+v)
	}
	for _, name := range p.Strings("secrets") {
		v, ok := p.Map("env")[name]
		if !ok {
			v = os.Getenv(name)
		}
		env.secret(v)
	}
	return s, nil
}

// firstWord is the program a simple shell command starts with, if it can
// be told without a shell parser.
func firstWord(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 || strings.ContainsAny(f[0], "=$`'\"(){}|&;<>") {
		return ""
	}
	switch f[0] {
	case "if", "for", "while", "case", "set", "export", "cd", "echo", "test", "[", "!", "exec", "true", "false", "printf", "read", "until":
		return ""
	}
	return f[0]
}

func (sh shell) Check(ctx context.Context, env *Env, p Params) error {
	s, err := sh.prepare(env, p)
	if err != nil {
		return err
	}
	progs := []string{s.argv[0]}
	if p.Has("command") {
		if w := firstWord(p.String("command", "")); w != "" {
			progs = append(progs, w)
		}
	}
	for _, prog := range progs {
		path, err := exec.LookPath(prog)
		if err != nil {
			return fmt.Errorf("%s: not found on PATH (install it on this machine, or use another step)", prog)
		}
		env.printf("%s is %s", prog, path)
	}
	if s.dir != "" {
		if fi, err := os.Stat(s.dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("working directory %s does not exist", s.dir)
		}
	}
	return nil
}

// maxCaptured bounds the stdout kept in the step's result.
const maxCaptured = 64 << 10

func (sh shell) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	s, err := sh.prepare(env, p)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Env, cmd.Dir = s.env, s.dir
	cmd.Stdin = nil
	// A timeout or Ctrl-C stops the whole process group, not just the
	// shell: a runbook must not leave a stray `kubectl wait` behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.argv[0], err)
	}
	var (
		mu       sync.Mutex
		captured strings.Builder
		tail     []string
		wg       sync.WaitGroup
	)
	pump := func(r io.Reader, keep bool) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			env.printf("%s", line)
			if keep && captured.Len() < maxCaptured {
				captured.WriteString(line)
				captured.WriteByte('\n')
			}
			tail = append(tail, line)
			if len(tail) > 5 {
				tail = tail[1:]
			}
			mu.Unlock()
		}
	}
	wg.Add(2)
	go pump(stdout, true)
	go pump(stderr, false)
	wg.Wait()
	err = cmd.Wait()
	res := Result{"stdout": strings.TrimRight(captured.String(), "\n"), "exit_code": cmd.ProcessState.ExitCode(), "duration_ms": time.Since(start).Milliseconds()}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			return res, fmt.Errorf("exit %d: %s", ee.ExitCode(), strings.Join(tail, " | "))
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("stopped: %w", ctx.Err())
		}
		return res, err
	}
	return res, nil
}
