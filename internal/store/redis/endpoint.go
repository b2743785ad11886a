package redis

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// clusterMode is what the URL says about Redis Cluster.
type clusterMode int

const (
	clusterAuto clusterMode = iota // ask the server (INFO cluster)
	clusterYes                     // ?cluster=true: must be a cluster
	clusterNo                      // ?cluster=false: must not be
)

// endpoint is a Redis deployment and how to log in to it. The password is
// kept apart from the address so that String never shows it.
type endpoint struct {
	addrs    []string // host:port; for a cluster, any of its nodes (seeds)
	username string
	password string
	db       int // -1 when the URL names none
	cluster  clusterMode
}

const defaultPort = "6379"

// parseEndpoint reads redis://[user[:password]@]host[:port][,host[:port]…][/db][?cluster=true|false].
// allowDB says whether a database number may follow the hosts (restore
// targets) or not (store URLs, which use the plan's databases instead).
func parseEndpoint(raw, passwordFile string, allowDB bool) (*endpoint, error) {
	const form = "want redis://[user:password@]host:port[,host:port…][?cluster=true]"
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme != "redis" {
		return nil, fmt.Errorf("invalid Redis URL %s: %s", redact(raw), form)
	}
	// url.Parse rejects host lists with IPv6 literals, so the hosts are
	// cut out and parsed here; the rest goes through url.Parse.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hosts := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	u, err := url.Parse("redis://" + userinfo + "placeholder" + tail)
	if err != nil {
		return nil, fmt.Errorf("invalid Redis URL %s: %v", redact(raw), err)
	}
	e := &endpoint{db: -1}
	for _, h := range strings.Split(hosts, ",") {
		addr, err := hostPort(h)
		if err != nil {
			return nil, fmt.Errorf("invalid Redis URL %s: %v", redact(raw), err)
		}
		e.addrs = append(e.addrs, addr)
	}
	if u.User != nil {
		e.username = u.User.Username()
		e.password, _ = u.User.Password()
	}
	if e.password == "" && passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return nil, fmt.Errorf("read password_file: %w", err)
		}
		e.password = strings.TrimRight(string(b), "\r\n")
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		n, err := strconv.Atoi(p)
		switch {
		case !allowDB:
			return nil, fmt.Errorf("Redis URL %s names database %q: list databases under the store's databases: instead", redact(raw), p)
		case err != nil || n < 0:
			return nil, fmt.Errorf("invalid Redis URL %s: database %q is not a number", redact(raw), p)
		}
		e.db = n
	}
	for k, v := range u.Query() {
		if k != "cluster" {
			return nil, fmt.Errorf("invalid Redis URL %s: unknown parameter %q (known: cluster)", redact(raw), k)
		}
		switch v[len(v)-1] {
		case "true", "1", "yes":
			e.cluster = clusterYes
		case "false", "0", "no":
			e.cluster = clusterNo
		default:
			return nil, fmt.Errorf("invalid Redis URL %s: cluster=%q, want true or false", redact(raw), v[len(v)-1])
		}
	}
	if len(e.addrs) > 1 && e.cluster == clusterNo {
		return nil, fmt.Errorf("invalid Redis URL %s: several hosts but cluster=false", redact(raw))
	}
	if len(e.addrs) > 1 {
		e.cluster = clusterYes
	}
	if e.db > 0 && e.cluster == clusterYes {
		return nil, fmt.Errorf("invalid Redis URL %s: Redis Cluster has only database 0", redact(raw))
	}
	return e, nil
}

func hostPort(h string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: the default one.
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return "", fmt.Errorf("bad host %q", h)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in %q", h)
	}
	if host == "" {
		return "", fmt.Errorf("no host in %q", h)
	}
	return net.JoinHostPort(host, port), nil
}

// String is the endpoint as a URL without the password.
func (e *endpoint) String() string {
	var b strings.Builder
	b.WriteString("redis://")
	if e.username != "" {
		b.WriteString(url.User(e.username).String() + "@")
	}
	b.WriteString(strings.Join(e.addrs, ","))
	if e.db >= 0 {
		fmt.Fprintf(&b, "/%d", e.db)
	}
	if e.cluster == clusterYes && len(e.addrs) == 1 {
		b.WriteString("?cluster=true")
	}
	return b.String()
}

// withDB is the endpoint's URL naming a database, for reports; a
// cluster's URL names none.
func (e *endpoint) withDB(db int, cluster bool) string {
	c := *e
	c.db = db
	if cluster {
		c.db = -1
	}
	return c.String()
}

// Timeouts of every connection. Reads are generous because DUMP and
// RESTORE of a large key take the server a while.
const (
	dialTimeout = 10 * time.Second
	ioTimeout   = 2 * time.Minute
)

// options for one node and database.
func (e *endpoint) options(addr string, db int) *goredis.Options {
	return &goredis.Options{
		Addr: addr, Username: e.username, Password: e.password, DB: db,
		Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true,
		DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout,
		PoolSize: 8, MaxRetries: 2, DialerRetries: 2,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

func (e *endpoint) clusterOptions() *goredis.ClusterOptions {
	return &goredis.ClusterOptions{
		Addrs: e.addrs, Username: e.username, Password: e.password,
		Protocol: 2, DisableIdentity: true, ContextTimeoutEnabled: true,
		DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout,
		PoolSize: 8, MaxRetries: 2, MaxRedirects: 8, DialerRetries: 2,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// scrub removes the password from an error message, should a library
// ever echo it.
func (e *endpoint) scrub(err error) error {
	if err == nil || e.password == "" || !strings.Contains(err.Error(), e.password) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), e.password, "xxxxx"))
}

// redact hides the password of a URL that may not parse.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "<unparseable URL>"
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if i := strings.LastIndex(rest[:end], "@"); i >= 0 {
		user, _, _ := strings.Cut(rest[:i], ":")
		if strings.Contains(rest[:i], ":") {
			user += ":xxxxx"
		}
		return scheme + "://" + user + rest[i:]
	}
	return raw
}
