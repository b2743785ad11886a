package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RedisAddr returns host:port of the shared standalone Redis 7 server
// (LINKDR_TEST_REDIS_ADDR). Prefer [NewRedis] when the test writes data others could see.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return Get(t, "LINKDR_TEST_REDIS_ADDR")
}

// RedisClusterAddrs returns host:port of the six nodes (3 masters, 3 replicas) of the shared
// Redis Cluster (LINKDR_TEST_REDIS_CLUSTER_ADDRS).
func RedisClusterAddrs(t testing.TB) []string {
	t.Helper()
	return strings.Split(Get(t, "LINKDR_TEST_REDIS_CLUSTER_ADDRS"), ",")
}

// NewRedis starts a standalone redis-server of the test's own on a free port of 127.0.0.1
// (no persistence, no diskless-sync delay; args are extra redis-server arguments such as
// "--requirepass", "secret") and stops it when the test ends. It returns host:port.
func NewRedis(t testing.TB, args ...string) string {
	t.Helper()
	bin := Bin(t, "redis-server")
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		_, port, _ := net.SplitHostPort(addr)
		argv := append([]string{bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
			"--daemonize", "no", "--save", "", "--appendonly", "no",
			"--repl-diskless-sync-delay", "0"}, args...)
		srv, err := startServer("redis-server "+addr, filepath.Join(dir, "log"), nil, syscall.SIGKILL, argv...)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(func() {
			if err := srv.stop(syscall.SIGTERM, 30*time.Second); err != nil {
				t.Errorf("testenv: %v", err)
			}
		})
		err = srv.waitReady(30*time.Second, func() error { return redisPing(addr, args) })
		if err != nil && attempt < 3 && srv.addrInUse() {
			_ = os.Truncate(filepath.Join(dir, "log"), 0)
			continue
		}
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		return addr
	}
}

// redisPing accepts PONG, or NOAUTH when the server was given a password.
func redisPing(addr string, args []string) error {
	v, err := redisDo(addr, "PING")
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOAUTH") {
			return nil
		}
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING: got %v", v)
	}
	return nil
}

// redisDo sends one command over a fresh connection and returns the reply: a string for
// simple and bulk strings, an int64, nil, or []any; a Redis error reply is returned as error.
func redisDo(addr string, args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(conn))
}

func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("resp: empty line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unexpected %q", line)
}

// NewRedisCluster starts a Redis Cluster of the test's own — masters (at least 3) each with
// replicas replicas, on free ports, no persistence — waits until every node reports
// cluster_state:ok and knows every other node, and stops it when the test ends. It returns
// every node's host:port (which are masters is for redis-cli to decide: ask CLUSTER SLOTS).
// It takes about two seconds.
func NewRedisCluster(t testing.TB, masters, replicas int) []string {
	t.Helper()
	if masters < 3 {
		t.Fatalf("testenv: a Redis Cluster needs at least 3 masters, not %d", masters)
	}
	n := masters * (1 + replicas)
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = NewRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command(Bin(t, "redis-cli"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	WaitFor(t, 60*time.Second, func() error {
		for _, a := range addrs {
			v, err := redisDo(a, "CLUSTER", "INFO")
			if err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			info, _ := v.(string)
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d\r", n)) {
				return fmt.Errorf("%s: cluster not converged yet", a)
			}
		}
		return nil
	})
	return addrs
}
