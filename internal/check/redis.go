package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
)

// probeRedis speaks just enough RESP for PING, INFO and DBSIZE, so a
// check needs no client library: AUTH (from the URL), SELECT (the URL's
// path /N), then the three commands.
func probeRedis(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	raw, err := r.target(c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, fmt.Errorf("want redis://[user:password@]host:port[/db], got %s", redacted(raw))
	}
	if u.Scheme == "rediss" {
		return nil, fmt.Errorf("rediss:// (TLS) is not supported by redis checks yet")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", host, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	rc := &resp{w: conn, r: bufio.NewReader(conn)}
	if pw, ok := u.User.Password(); ok {
		args := []string{"AUTH", pw}
		if name := u.User.Username(); name != "" && name != "default" {
			args = []string{"AUTH", name, pw}
		}
		if _, err := rc.do(args...); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" && db != "0" {
		if _, err := rc.do("SELECT", db); err != nil {
			return nil, fmt.Errorf("SELECT %s: %w", db, err)
		}
	}
	pong, err := rc.do("PING")
	if err != nil {
		return nil, fmt.Errorf("PING: %w", err)
	}
	vars := map[string]any{"pong": pong == "PONG"}
	info, err := rc.do("INFO", "replication")
	if err != nil {
		return nil, fmt.Errorf("INFO replication: %w", err)
	}
	for _, line := range strings.Split(fmt.Sprint(info), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "role":
			vars["role"] = v
		case "connected_slaves":
			n, _ := strconv.Atoi(v)
			vars["connected_replicas"] = n
		}
	}
	keys, err := rc.do("DBSIZE")
	if err != nil {
		return nil, fmt.Errorf("DBSIZE: %w", err)
	}
	n, _ := keys.(int64)
	vars["keys"] = int(n)
	vars["latency"] = time.Since(start)
	return vars, nil
}

type resp struct {
	w net.Conn
	r *bufio.Reader
}

func (c *resp) do(args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.w.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return c.read()
}

func (c *resp) read() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, errors.New(line[1:])
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}
