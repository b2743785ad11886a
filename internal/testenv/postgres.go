package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const defaultPGBinDir = "/usr/lib/postgresql/15/bin"

// PostgresURL returns the URL of the shared PostgreSQL 15 primary (LINKDR_TEST_PG_URL),
// connecting as the superuser postgres to database postgres. Prefer [NewDatabase] for a
// database of your own.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return Get(t, "LINKDR_TEST_PG_URL")
}

// StandbyURL returns the URL of the streaming standby of the shared primary
// (LINKDR_TEST_PG_STANDBY_URL). It is read-only and in recovery.
func StandbyURL(t testing.TB) string {
	t.Helper()
	return Get(t, "LINKDR_TEST_PG_STANDBY_URL")
}

// PGBinDir returns the directory of the PostgreSQL 15 programs (LINKDR_TEST_PG_BINDIR, or
// /usr/lib/postgresql/15/bin when that exists).
func PGBinDir(t testing.TB) string {
	t.Helper()
	if v, ok := Lookup("LINKDR_TEST_PG_BINDIR"); ok {
		return v
	}
	if isExecutable(filepath.Join(defaultPGBinDir, "postgres")) {
		return defaultPGBinDir
	}
	return Get(t, "LINKDR_TEST_PG_BINDIR")
}

// NewDatabase creates a database with a unique name starting with prefix (the test name if
// empty) on the shared primary, drops it WITH (FORCE) when the test ends, and returns its URL.
func NewDatabase(t testing.TB, prefix string) string {
	t.Helper()
	base := PostgresURL(t)
	name := uniqueName(t, prefix, '_', 63)
	if err := pgExec(base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := pgExec(base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: parse LINKDR_TEST_PG_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func pgExec(connURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// PostgresOptions says how [NewPostgres] builds its cluster. The zero value is a fresh
// initdb'd cluster, started.
type PostgresOptions struct {
	// Conf lines are appended to postgresql.conf before the first start, for example
	// "archive_mode = on" or "archive_command = 'cp %p /dir/%f'". Commands in them run as the
	// postgres OS user: give them directories from [TempDir].
	Conf []string
	// DataDir, if set, is an existing data directory to run instead of a new one, such as a
	// restored base backup. Its files are chowned to the postgres user. It is not removed.
	DataDir string
	// StandbyOf, if set, makes the cluster a streaming standby of that server
	// (pg_basebackup -R -X stream).
	StandbyOf *Postgres
	// Empty leaves DataDir an empty directory, owned by the postgres user, and does not start:
	// lay the files down (a PITR restore, say), then call Start.
	Empty bool
	// NoStart prepares the cluster but does not start it; call Start.
	NoStart bool
}

// Postgres is a throwaway PostgreSQL 15 cluster started by [NewPostgres]. Port and URL stay
// the same across Stop and Start.
type Postgres struct {
	URL       string // postgres://postgres@127.0.0.1:Port/postgres?sslmode=disable
	Port      int
	DataDir   string
	SocketDir string // unix_socket_directories
	LogFile   string // server output, kept across restarts
	BinDir    string

	user    osUser
	conf    []string
	mu      sync.Mutex
	srv     *server
	started bool // started at least once
}

// NewPostgres creates a PostgreSQL 15 cluster of its own for the test, runs it as the
// postgres OS user on a free port of 127.0.0.1 with trust authentication, and stops it
// (fast shutdown) and removes its files when the test ends. Unless opts say otherwise it is
// initdb'd with wal_level=replica and fsync=off, and started and ready when NewPostgres
// returns.
func NewPostgres(t testing.TB, opts PostgresOptions) *Postgres {
	t.Helper()
	u, err := postgresUser()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	base := TempDir(t)
	p := &Postgres{
		Port:      FreePort(t),
		DataDir:   filepath.Join(base, "data"),
		SocketDir: filepath.Join(base, "run"),
		LogFile:   filepath.Join(base, "log"),
		BinDir:    PGBinDir(t),
		user:      u,
		conf:      opts.Conf,
	}
	p.setURL()
	if len(p.SocketDir) > 80 { // a socket path must fit in sun_path (108 bytes)
		dir, err := os.MkdirTemp("", "pgsock-")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		if err := os.Remove(dir); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		p.SocketDir = dir
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	if err := os.Mkdir(p.SocketDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := u.chownTree(p.SocketDir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})

	switch {
	case opts.DataDir != "":
		p.DataDir = opts.DataDir
		if err := makeReachable(u, p.DataDir); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	case opts.StandbyOf != nil:
		p.mkdirData(t)
		err = u.run(filepath.Join(p.BinDir, "pg_basebackup"), "-h", "127.0.0.1",
			"-p", strconv.Itoa(opts.StandbyOf.Port), "-U", "postgres", "-D", p.DataDir,
			"-R", "-X", "stream", "-c", "fast")
		if err != nil {
			t.Fatalf("testenv: base backup for standby: %v", err)
		}
	case opts.Empty:
		p.mkdirData(t)
		return p
	default:
		p.mkdirData(t)
		err = u.run(filepath.Join(p.BinDir, "initdb"), "-D", p.DataDir, "-U", "postgres",
			"--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		p.conf = append([]string{
			"wal_level = replica",
			"max_wal_senders = 10",
			"max_replication_slots = 10",
			"fsync = off",
		}, p.conf...)
	}
	if opts.NoStart {
		return p
	}
	if err := p.Start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

func (p *Postgres) setURL() {
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
}

func (p *Postgres) mkdirData(t testing.TB) {
	t.Helper()
	if err := os.Mkdir(p.DataDir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := p.user.chownTree(p.DataDir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// Start starts the server (again) and waits until it accepts connections: a server in
// recovery is ready once it is consistent (hot_standby is on by default), so poll
// pg_is_in_recovery() to see a PITR restore finish. Before the first start it appends the
// Conf lines to postgresql.conf; every start first hands all of DataDir to the postgres user,
// so files laid down by the test (recovery.signal, a restore) are readable.
func (p *Postgres) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil && p.srv.running() {
		return nil
	}
	if !p.started && len(p.conf) > 0 {
		f, err := os.OpenFile(filepath.Join(p.DataDir, "postgresql.conf"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		_, err = fmt.Fprintf(f, "\n# testenv.NewPostgres\n%s\n", strings.Join(p.conf, "\n"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
	}
	if err := p.user.chownTree(p.DataDir); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := os.Chmod(p.DataDir, 0o700); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	for attempt := 0; ; attempt++ {
		srv, err := startServer("postgres "+p.DataDir, p.LogFile, p.user.cred, syscall.SIGQUIT,
			filepath.Join(p.BinDir, "postgres"), "-D", p.DataDir,
			"-c", "port="+strconv.Itoa(p.Port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories="+p.SocketDir)
		if err != nil {
			return err
		}
		p.srv = srv
		err = srv.waitReady(2*time.Minute, p.ping)
		if err != nil && !p.started && attempt < 3 && srv.addrInUse() {
			port, perr := freePort()
			if perr != nil {
				return perr
			}
			p.Port = port
			p.setURL()
			continue
		}
		if err == nil {
			p.started = true
		}
		return err
	}
}

func (p *Postgres) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// Stop shuts the server down (SIGINT, fast shutdown) and waits for it to exit.
func (p *Postgres) Stop() error { return p.stop(syscall.SIGINT) }

// Crash stops the server with SIGQUIT (immediate shutdown): the next Start runs crash
// recovery.
func (p *Postgres) Crash() error { return p.stop(syscall.SIGQUIT) }

func (p *Postgres) stop(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		return nil
	}
	return p.srv.stop(sig, time.Minute)
}

// Running reports whether the server process is alive.
func (p *Postgres) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv != nil && p.srv.running()
}

// Promote promotes a standby (pg_ctl promote -w) and returns when it accepts writes.
func (p *Postgres) Promote() error {
	err := p.user.run(filepath.Join(p.BinDir, "pg_ctl"), "promote", "-w", "-t", "60", "-D", p.DataDir)
	if err != nil {
		return fmt.Errorf("promote %s: %w", p.DataDir, err)
	}
	return nil
}

// TempDir returns a new directory, owned by the postgres OS user and open to everyone
// (0755), that PostgreSQL programs and archive commands can use and tests can write to as
// root. It lives under .testenv/tmp (or the system temporary directory outside a module) and
// is removed when the test ends.
func TempDir(t testing.TB) string {
	t.Helper()
	u, err := postgresUser()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	parent := os.TempDir()
	if root, err := ModuleRoot(); err == nil {
		parent = filepath.Join(root, ".testenv", "tmp")
		if err := os.MkdirAll(parent, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	dir, err := os.MkdirTemp(parent, uniqueName(t, "", '-', 24)+"-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := u.chownTree(dir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := makeReachable(u, dir); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}
