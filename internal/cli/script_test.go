package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// Every test of this package runs in parallel with the others (they wait
// on servers far more than they compute, and each has its own databases,
// repositories and binary); TestRegionalFailoverRehearsal does not, as it
// sets KUBECONFIG for the process.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"linkdr": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScript runs testdata/script/*.txtar: the real linkdr command line
// against the real PostgreSQL and S3 servers from testenv. Each script
// gets a fresh database $DB on the server $PGBASE with a few tables, and
// $PGDB, the URL of that database.
func TestScript(t *testing.T) {
	t.Parallel()
	pgURL := testenv.PostgresURL(t)
	s3 := testenv.S3(t)
	ageBin := testenv.Bin(t, "age")
	bucket := testenv.NewBucket(t, s3.Endpoint) // scripts use prefixes named after $DB
	// No Qdrant can run here: the OpenAPI-conformant test server stands in
	// (shared by the scripts, which use collections named after $DB).
	qd := qdranttest.New(t, qdranttest.Options{APIKey: "script-key", YellowPolls: 2})
	redisEnv, redisCmds := redisScripts(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			base, err := url.Parse(pgURL)
			if err != nil {
				return err
			}
			base.Path, base.RawQuery = "", ""
			db := "cli_" + randomSuffix()
			if err := sqlExec(pgURL, "CREATE DATABASE "+db); err != nil {
				return err
			}
			env.Defer(func() { sqlExec(pgURL, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
			dbURL := base.String() + "/" + db
			if err := sqlExec(dbURL, scriptData); err != nil {
				return err
			}
			env.Setenv("PGBASE", base.String())
			env.Setenv("DB", db)
			env.Setenv("PGDB", dbURL)
			env.Setenv("S3_ENDPOINT", s3.Endpoint)
			env.Setenv("S3_BUCKET", bucket)
			env.Setenv("AWS_ACCESS_KEY_ID", s3.AccessKey)
			env.Setenv("AWS_SECRET_ACCESS_KEY", s3.SecretKey)
			env.Setenv("AWS_REGION", s3.Region)
			env.Setenv("AGE", ageBin)
			env.Setenv("LINKDR_CONFIG", "")
			env.Setenv("S3_DR_ENDPOINT", s3.DREndpoint)
			env.Setenv("QDRANT_URL", qd.URL())
			env.Setenv("QDRANT_API_KEY", "script-key")
			for k, v := range redisEnv {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: withCmds(map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"flipbyte":  cmdFlipByte,
			"holdlease": cmdHoldLease,
			"sql":       cmdSQL,
			"qdrant":    func(ts *testscript.TestScript, neg bool, args []string) { cmdQdrant(ts, qd, args) },
			"s3":        func(ts *testscript.TestScript, neg bool, args []string) { cmdS3(t, ts, args) },
		}, redisCmds),
	})
}

func withCmds(a, b map[string]func(*testscript.TestScript, bool, []string)) map[string]func(*testscript.TestScript, bool, []string) {
	for k, v := range b {
		a[k] = v
	}
	return a
}

const scriptData = `
CREATE TABLE users (id int PRIMARY KEY, email text, created timestamptz DEFAULT '2026-01-01');
INSERT INTO users (id, email) SELECT i, 'u' || i || '@example.com' FROM generate_series(1, 1000) i;
CREATE TABLE messages (id int, body text);
INSERT INTO messages SELECT i, repeat('hi ', i % 10) FROM generate_series(1, 3000) i;`

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sqlExec(dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// sql URL STATEMENT runs SQL; with "sql -q URL QUERY", stdout gets the
// first column of the first row.
func cmdSQL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 3 && args[0] == "-q" {
		c, err := pgx.Connect(context.Background(), args[1])
		ts.Check(err)
		defer c.Close(context.Background())
		var v any
		err = c.QueryRow(context.Background(), args[2]).Scan(&v)
		switch {
		case neg && err == nil:
			ts.Fatalf("query returned %v, want no row or an error", v)
		case neg:
			return
		}
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "%v\n", v)
		return
	}
	if len(args) != 2 {
		ts.Fatalf("usage: sql [-q] URL SQL")
	}
	err := sqlExec(args[0], args[1])
	if neg && err == nil {
		ts.Fatalf("sql succeeded unexpectedly")
	}
	if !neg {
		ts.Check(err)
	}
}

// flipbyte FILE-GLOB flips one byte in the middle of the matching file.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	matches, _ := filepath.Glob(ts.MkAbs(args[0]))
	if len(matches) != 1 {
		ts.Fatalf("flipbyte %s: %d matches", args[0], len(matches))
	}
	b, err := os.ReadFile(matches[0])
	ts.Check(err)
	b[len(b)/2] ^= 0x01
	ts.Check(os.WriteFile(matches[0], b, 0o600))
}

// holdlease REPO-DIR STORE takes the store's lease as another writer would.
func cmdHoldLease(ts *testscript.TestScript, neg bool, args []string) {
	r, err := repo.Open(context.Background(), "file://"+ts.MkAbs(args[0]))
	ts.Check(err)
	_, err = r.AcquireLease(context.Background(), args[1], "backup by another host", time.Hour)
	ts.Check(err)
}
