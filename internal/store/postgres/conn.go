package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// endpoint is a server address plus credentials, split so the password
// reaches libpq tools through the environment, never argv.
type endpoint struct {
	u        *url.URL // without password
	password string
}

func parseEndpoint(raw, passwordFile string) (*endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("invalid PostgreSQL URL %s: want postgres://user@host:port/db", redactURL(raw))
	}
	e := &endpoint{u: u}
	if p, ok := u.User.Password(); ok {
		e.password = p
		u.User = url.User(u.User.Username())
	} else if passwordFile != "" {
		b, err := os.ReadFile(passwordFile)
		if err != nil {
			return nil, fmt.Errorf("read password_file: %w", err)
		}
		e.password = strings.TrimRight(string(b), "\r\n")
	}
	return e, nil
}

// db returns a copy pointing at another database.
func (e *endpoint) db(name string) *endpoint {
	u := *e.u
	u.Path = "/" + name
	u.RawPath = ""
	return &endpoint{u: &u, password: e.password}
}

// database is the database named in the URL ("" if none).
func (e *endpoint) database() string { return strings.TrimPrefix(e.u.Path, "/") }

// String is safe to print: it never contains the password.
func (e *endpoint) String() string { return e.u.Redacted() }

// hostPort is host:port for manifests.
func (e *endpoint) hostPort() string { return e.u.Host }

// connString includes the password, for pgx only.
func (e *endpoint) connString() string {
	u := *e.u
	if e.password != "" {
		u.User = url.UserPassword(u.User.Username(), e.password)
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "10")
	}
	if q.Get("application_name") == "" {
		q.Set("application_name", "linkdr")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// toolEnv is the environment for pg_dump/pg_restore.
func (e *endpoint) toolEnv(extra ...string) []string {
	env := append(os.Environ(), "PGAPPNAME=linkdr", "PGCONNECT_TIMEOUT=10")
	if e.password != "" {
		env = append(env, "PGPASSWORD="+e.password)
	}
	return append(env, extra...)
}

func (e *endpoint) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(cctx, e.connString())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e, scrub(err, e.password))
	}
	return c, nil
}

// scrub removes a password from an error message, in case a driver
// echoes the connection string.
func scrub(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// serverInfo is what linkdr records about the server backed up.
type serverInfo struct {
	Version          string
	VersionNum       int
	SystemIdentifier string
	InRecovery       bool
}

func queryServerInfo(ctx context.Context, c *pgx.Conn) (serverInfo, error) {
	var si serverInfo
	var num string
	err := c.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('server_version_num'),
		(SELECT system_identifier::text FROM pg_control_system()), pg_is_in_recovery()`).
		Scan(&si.Version, &num, &si.SystemIdentifier, &si.InRecovery)
	if err != nil {
		return si, fmt.Errorf("query server version: %w", err)
	}
	fmt.Sscanf(num, "%d", &si.VersionNum)
	return si, nil
}

func (si serverInfo) major() int { return si.VersionNum / 10000 }
