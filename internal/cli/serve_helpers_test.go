package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/testenv"
)

var built struct {
	once sync.Once
	path string
	err  error
}

// linkdrBinary builds the real binary once for all serve tests.
func linkdrBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		root, err := testenv.ModuleRoot()
		if err != nil {
			built.err = err
			return
		}
		dir, err := os.MkdirTemp("", "linkdr-serve-test-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "linkdr")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/linkdr")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

const testToken = "serve-test-token-0123456789abcdef"

// servePlan writes linkdr.yaml (with a fresh age key pair and a token
// file) into dir: body holds everything after encryption. It
// initialises the repositories named in urls and returns the plan path.
func servePlan(t *testing.T, dir, body string, urls ...string) string {
	t.Helper()
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "age.key")
	os.WriteFile(key, kp.IdentityFile("test"), 0o600)
	os.WriteFile(filepath.Join(dir, "serve.token"), []byte(testToken+"\n"), 0o600)
	plan := fmt.Sprintf("version: 1\nname: servetest\nencryption:\n  recipients: [%q]\n  identity_file: %s\n%s", kp.Recipient, key, body)
	path := filepath.Join(dir, "linkdr.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		r, _, err := repo.Init(context.Background(), u, []string{kp.Recipient})
		if err != nil {
			t.Fatalf("init %s: %v", u, err)
		}
		r.Close()
	}
	return path
}

// serveProc is a running `linkdr serve`.
type serveProc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string
	log  string
	done chan struct{}
	err  error
}

func startServe(t *testing.T, name, planPath string, port int, extraEnv []string, args ...string) *serveProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"--config", planPath, "--log-format", "json", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
	cmd := exec.Command(linkdrBinary(t), all...)
	cmd.Env = append(append(os.Environ(), "LINKDR_CONFIG=", "LINKDR_SERVE_TOKEN="), extraEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := &serveProc{t: t, name: name, cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("---- log of %s ----\n%s", name, tail(string(b), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *serveProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// do sends a request with the token (tok "" = none).
func (p *serveProc) do(method, path, tok string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (p *serveProc) get(path string) (int, []byte) {
	p.t.Helper()
	code, b, err := p.do("GET", path, testToken, nil)
	if err != nil {
		p.t.Fatalf("%s GET %s: %v", p.name, path, err)
	}
	return code, b
}

// apiStatus is the part of /api/v1/status the tests read.
type apiStatus struct {
	Ready      bool   `json:"ready"`
	ReadyError string `json:"ready_error"`
	Leader     struct {
		Identity string `json:"identity"`
		Leader   string `json:"leader"`
		IsLeader bool   `json:"is_leader"`
		Known    bool   `json:"known"`
	} `json:"leader"`
	Runs []struct {
		Job, Result, Error string
	} `json:"runs"`
}

func (p *serveProc) status() (apiStatus, error) {
	code, b, err := p.do("GET", "/api/v1/status", testToken, nil)
	if err != nil {
		return apiStatus{}, err
	}
	if code != 200 {
		return apiStatus{}, fmt.Errorf("status %d: %s", code, b)
	}
	var s apiStatus
	err = json.Unmarshal(b, &s)
	return s, err
}

func (p *serveProc) waitReady(timeout time.Duration) {
	p.t.Helper()
	testenv.WaitFor(p.t, timeout, func() error {
		if !p.running() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.logText())
		}
		code, b, err := p.do("GET", "/readyz", "", nil)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("readyz %d: %s", code, b)
		}
		return nil
	})
}

func (p *serveProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// stop sends sig and returns the exit code.
func (p *serveProc) stop(sig syscall.Signal, timeout time.Duration) int {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s did not exit within %s of %v", p.name, timeout, sig)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// logEvent is one JSON log line of serve.
type logEvent struct {
	Time time.Time `json:"time"`
	Msg  string    `json:"msg"`
	Job  string    `json:"job"`
	Err  string    `json:"err"`
}

func (p *serveProc) events() []logEvent {
	var out []logEvent
	sc := bufio.NewScanner(strings.NewReader(p.logText()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && !e.Time.IsZero() {
			out = append(out, e)
		}
	}
	return out
}

// objects returns key → SHA-256 of every object under the copied prefixes.
func objects(t *testing.T, r *repo.Repo) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx := context.Background()
	for _, prefix := range repo.CopiedPrefixes {
		it := r.Bucket().List(&blob.ListOptions{Prefix: prefix})
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.Bucket().ReadAll(ctx, o.Key)
			if err != nil {
				continue // deleted meanwhile (retention)
			}
			sum := sha256.Sum256(b)
			out[o.Key] = hex.EncodeToString(sum[:])
		}
	}
	return out
}

// metric returns the value of the first sample whose line starts with
// prefix (name and labels) in a /metrics body.
func metric(body []byte, prefix string) (string, bool) {
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			return f[len(f)-1], true
		}
	}
	return "", false
}

// proxy forwards TCP connections to target until stopped; Stop closes
// the listener and every open connection, so clients see a dead server.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), conns: map[net.Conn]bool{}}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func (p *proxy) Start() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
	return nil
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	go func() { io.Copy(up, c); up.Close() }()
	io.Copy(c, up)
	c.Close()
}

func (p *proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}
