package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func exec1(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPostgres(t *testing.T) {
	t.Run("Primary", func(t *testing.T) {
		conn := connect(t, PostgresURL(t))
		if got := queryString(t, conn, "select pg_is_in_recovery()::text"); got != "false" {
			t.Fatalf("primary in recovery: %s", got)
		}
		if got := queryString(t, conn, "show server_version_num"); !strings.HasPrefix(got, "15") {
			t.Fatalf("server_version_num = %s, want 15xxxx", got)
		}
		if got := queryString(t, conn, "select count(*)::text from pg_stat_replication where state = 'streaming'"); got == "0" {
			t.Fatal("no streaming standby attached to the primary")
		}
	})
	t.Run("Standby", func(t *testing.T) {
		conn := connect(t, StandbyURL(t))
		if got := queryString(t, conn, "select pg_is_in_recovery()::text"); got != "true" {
			t.Fatalf("standby pg_is_in_recovery() = %s", got)
		}
	})
	t.Run("NewDatabase", func(t *testing.T) {
		url := NewDatabase(t, "testenv")
		conn := connect(t, url)
		exec1(t, conn, "create table t (v text); insert into t values ('hello')")
		if got := queryString(t, conn, "select v from t"); got != "hello" {
			t.Fatalf("got %q", got)
		}
		if name := queryString(t, conn, "select current_database()"); !strings.HasPrefix(name, "testenv_") {
			t.Fatalf("database %q does not start with the prefix", name)
		}
	})
	t.Run("PGBinDir", func(t *testing.T) {
		out := run(t, filepath.Join(PGBinDir(t), "pg_dump"), "--version")
		if !strings.Contains(out, " 15.") {
			t.Fatalf("pg_dump --version: %s", out)
		}
	})
}

func TestNewPostgres(t *testing.T) {
	archive := TempDir(t)
	p := NewPostgres(t, PostgresOptions{Conf: []string{
		"archive_mode = on",
		fmt.Sprintf("archive_command = 'cp %%p %s/%%f'", archive),
	}})
	conn := connect(t, p.URL)
	if got := queryString(t, conn, "show archive_mode"); got != "on" {
		t.Fatalf("archive_mode = %s: Conf not applied", got)
	}
	exec1(t, conn, "create table t (v int); insert into t select generate_series(1, 100)")
	exec1(t, conn, "select pg_switch_wal()")
	WaitFor(t, 30*time.Second, func() error {
		entries, err := os.ReadDir(archive)
		if err != nil || len(entries) == 0 {
			return fmt.Errorf("no WAL archived in %s (%v)", archive, err)
		}
		return nil
	})
	conn.Close(context.Background())

	t.Run("Restart", func(t *testing.T) {
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if p.Running() {
			t.Fatal("running after Stop")
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, connect(t, p.URL), "select count(*)::text from t"); got != "100" {
			t.Fatalf("count after restart = %s", got)
		}
	})
	t.Run("StandbyOf", func(t *testing.T) {
		s := NewPostgres(t, PostgresOptions{StandbyOf: p})
		sconn := connect(t, s.URL)
		if got := queryString(t, sconn, "select pg_is_in_recovery()::text"); got != "true" {
			t.Fatalf("standby pg_is_in_recovery() = %s", got)
		}
		exec1(t, connect(t, p.URL), "insert into t values (101)")
		WaitFor(t, 30*time.Second, func() error {
			var n int
			if err := sconn.QueryRow(context.Background(), "select count(*) from t").Scan(&n); err != nil {
				return err
			}
			if n != 101 {
				return fmt.Errorf("standby has %d rows", n)
			}
			return nil
		})
		if err := s.Promote(); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, sconn, "select pg_is_in_recovery()::text"); got != "false" {
			t.Fatalf("promoted pg_is_in_recovery() = %s", got)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		// Lay a base backup down as root, then start it: Start hands the files to postgres.
		r := NewPostgres(t, PostgresOptions{Empty: true})
		if r.Running() {
			t.Fatal("Empty cluster is running")
		}
		run(t, Bin(t, "pg_basebackup"), "-d", p.URL, "-D", r.DataDir, "-X", "stream", "-c", "fast")
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, connect(t, r.URL), "select count(*)::text from t"); got != "101" {
			t.Fatalf("restored count = %s", got)
		}
	})
	t.Run("DataDir", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "restore") // 0700 root parents: made reachable
		run(t, Bin(t, "pg_basebackup"), "-d", p.URL, "-D", dir, "-X", "stream", "-c", "fast")
		r := NewPostgres(t, PostgresOptions{DataDir: dir})
		if got := queryString(t, connect(t, r.URL), "select count(*)::text from t"); got != "101" {
			t.Fatalf("restored count = %s", got)
		}
		if err := r.Crash(); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRedis(t *testing.T) {
	t.Run("Standalone", func(t *testing.T) {
		if v, err := redisDo(RedisAddr(t), "PING"); err != nil || v != "PONG" {
			t.Fatalf("PING = %v, %v", v, err)
		}
	})
	t.Run("Cluster", func(t *testing.T) {
		addrs := RedisClusterAddrs(t)
		if len(addrs) != 6 {
			t.Fatalf("%d cluster nodes, want 6", len(addrs))
		}
		masters := 0
		for _, a := range addrs {
			v, err := redisDo(a, "CLUSTER", "INFO")
			if err != nil {
				t.Fatalf("%s CLUSTER INFO: %v", a, err)
			}
			info, _ := v.(string)
			if !strings.Contains(info, "cluster_state:ok") {
				t.Fatalf("%s CLUSTER INFO:\n%s", a, info)
			}
			role, err := redisDo(a, "ROLE")
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := role.([]any); ok && len(r) > 0 && r[0] == "master" {
				masters++
			}
		}
		if masters != 3 {
			t.Fatalf("%d masters, want 3", masters)
		}
	})
	t.Run("NewRedis", func(t *testing.T) {
		addr := NewRedis(t)
		if _, err := redisDo(addr, "SET", "k", "v"); err != nil {
			t.Fatal(err)
		}
		if v, err := redisDo(addr, "GET", "k"); err != nil || v != "v" {
			t.Fatalf("GET = %v, %v", v, err)
		}
		auth := NewRedis(t, "--requirepass", "secret")
		if _, err := redisDo(auth, "GET", "k"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
			t.Fatalf("GET without password: %v", err)
		}
	})
}

func TestS3(t *testing.T) {
	info := S3(t)
	for name, endpoint := range map[string]string{"Primary": info.Endpoint, "DR": info.DREndpoint} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			client := S3Client(t, endpoint)
			bucket := NewBucket(t, endpoint)
			_, err := client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
				Bucket:                  aws.String(bucket),
				VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
			})
			if err != nil {
				t.Fatalf("enable versioning: %v", err)
			}
			for _, body := range []string{"one", "two"} {
				_, err := client.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String("dir/obj"), Body: strings.NewReader(body),
				})
				if err != nil {
					t.Fatalf("put: %v", err)
				}
			}
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/obj")})
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			b, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(b) != "two" {
				t.Fatalf("get = %q, want two", b)
			}
			versions, err := client.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatalf("list versions: %v", err)
			}
			if len(versions.Versions) != 2 {
				t.Fatalf("%d versions, want 2", len(versions.Versions))
			}
		})
	}
	t.Run("WrongSecret", func(t *testing.T) {
		client := s3.New(s3.Options{
			BaseEndpoint: aws.String(info.Endpoint), Region: info.Region, UsePathStyle: true,
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: info.AccessKey, SecretAccessKey: "wrong"}, nil
			}),
		})
		if _, err := client.ListBuckets(context.Background(), &s3.ListBucketsInput{}); err == nil {
			t.Fatal("wrong secret accepted")
		}
	})
	t.Run("ObjectLock", func(t *testing.T) {
		bucket := NewObjectLockBucket(t, info.Endpoint)
		cfg, err := S3Client(t, info.Endpoint).GetObjectLockConfiguration(context.Background(),
			&s3.GetObjectLockConfigurationInput{Bucket: aws.String(bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ObjectLockConfiguration.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
			t.Fatalf("object lock = %v", cfg.ObjectLockConfiguration.ObjectLockEnabled)
		}
	})
	t.Run("S3URL", func(t *testing.T) {
		got := S3URL(t, info.Endpoint, "b", "backups/x")
		want := "s3://b/backups/x?endpoint=" + strings.ReplaceAll(info.Endpoint, ":", "%3A")
		if !strings.HasPrefix(strings.ReplaceAll(got, "%2F", "/"), want) || !strings.Contains(got, "use_path_style=true") {
			t.Fatalf("S3URL = %s", got)
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") != info.AccessKey {
			t.Fatal("AWS_ACCESS_KEY_ID not set")
		}
	})
}

func TestKube(t *testing.T) {
	ns := NewNamespace(t)
	var got struct {
		Metadata struct{ Name string }  `json:"metadata"`
		Status   struct{ Phase string } `json:"status"`
	}
	if _, err := kubeRequest(t, http.MethodGet, "/api/v1/namespaces/"+ns, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Name != ns || got.Status.Phase != "Active" {
		t.Fatalf("namespace = %+v", got)
	}
	cm := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "cm"},
		"data":     map[string]string{"k": "v"},
	}
	if _, err := kubeRequest(t, http.MethodPost, "/api/v1/namespaces/"+ns+"/configmaps", cm, nil); err != nil {
		t.Fatal(err)
	}
	var version struct{ GitVersion string }
	if _, err := kubeRequest(t, http.MethodGet, "/version", nil, &version); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version.GitVersion, "v1.34.") {
		t.Fatalf("server version %q", version.GitVersion)
	}
	kc, err := os.ReadFile(Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(kc, []byte(Kube(t).Server)) || !bytes.Contains(kc, []byte(Kube(t).Token)) {
		t.Fatalf("kubeconfig lacks server or token:\n%s", kc)
	}
}

func TestDNS(t *testing.T) {
	t.Run("Shared", func(t *testing.T) {
		info := DNS(t)
		if _, err := querySOA(info.Addr, info.Zone); err != nil {
			t.Fatal(err)
		}
		host, port, _ := strings.Cut(info.Addr, ":")
		out := run(t, Bin(t, "dig"), "@"+host, "-p", port, "+short", "api."+info.Zone, "A")
		if strings.TrimSpace(out) != "10.0.1.10" {
			t.Fatalf("dig api.%s = %q", info.Zone, out)
		}
		if info.TSIGAlgorithm != "hmac-sha256" || info.TSIGSecret == "" || !strings.HasSuffix(info.TSIGName, ".") {
			t.Fatalf("TSIG = %+v", info)
		}
	})
	t.Run("NewDNS", func(t *testing.T) {
		info := NewDNS(t)
		if _, err := querySOA(info.Addr, info.Zone); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTools(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // regexp the output must match
	}{
		{"promtool", []string{"--version"}, `promtool, version 2\.`},
		{"prometheus", []string{"--version"}, `prometheus, version 2\.`},
		{"age", []string{"--version"}, `^v?1\.`},
		{"zstd", []string{"--version"}, `Zstandard`},
		{"pg_dump", []string{"--version"}, ` 15\.`},
		{"pg_restore", []string{"--version"}, ` 15\.`},
		{"pgbackrest", []string{"version"}, `pgBackRest 2\.`},
		{"redis-cli", []string{"--version"}, `redis-cli 7\.`},
		{"redis-server", []string{"--version"}, `v=7\.`},
		{"dig", []string{"-v"}, `DiG 9\.`},
		{"chromium", []string{"--version"}, `Chromium \d+`},
		{"etcd", []string{"--version"}, `etcd Version: 3\.`},
		{"kube-apiserver", []string{"--version"}, `Kubernetes v1\.34\.`},
		{"versitygw", []string{"--version"}, `.`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, Bin(t, tc.name), tc.args...)
			if !regexp.MustCompile(tc.want).MatchString(out) {
				t.Fatalf("%s %v: %q does not match %q", tc.name, tc.args, out, tc.want)
			}
		})
	}
	t.Run("age-keygen", func(t *testing.T) {
		if out := run(t, Bin(t, "age-keygen")); !strings.Contains(out, "AGE-SECRET-KEY-") {
			t.Fatalf("age-keygen: %q", out)
		}
	})
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

func TestGet(t *testing.T) {
	t.Run("Missing", func(t *testing.T) {
		f := &fakeTB{TB: t}
		Get(f, "LINKDR_TEST_NO_SUCH_SERVER")
		want := `testenv: LINKDR_TEST_NO_SUCH_SERVER is not set: run "scripts/testenv.sh up"`
		if !strings.HasPrefix(f.fatal, want) {
			t.Fatalf("Fatalf(%q), want prefix %q", f.fatal, want)
		}
	})
	t.Run("ProcessEnvWins", func(t *testing.T) {
		t.Setenv("LINKDR_TEST_PG_BINDIR", "/elsewhere")
		if got := Get(t, "LINKDR_TEST_PG_BINDIR"); got != "/elsewhere" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("Environ", func(t *testing.T) {
		found := false
		for _, kv := range Environ() {
			found = found || strings.HasPrefix(kv, "LINKDR_TEST_PG_URL=")
		}
		if !found {
			t.Fatal("LINKDR_TEST_PG_URL not in Environ()")
		}
	})
}

func TestParseEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	content := "# comment\nA=1\n\nB=postgres://x@h:1/db?sslmode=disable\nC=\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got["A"] != "1" || got["B"] != "postgres://x@h:1/db?sslmode=disable" || got["C"] != "" || len(got) != 3 {
		t.Fatalf("got %v", got)
	}
	if err := os.WriteFile(path, []byte("oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseEnvFile(path); err == nil {
		t.Fatal("no error for a line without =")
	}
}

func TestUniqueName(t *testing.T) {
	re := regexp.MustCompile(`^[a-z][a-z0-9-]*-[0-9a-f]{8}$`)
	for _, prefix := range []string{"", "Restore/PITR_1", "9lives", strings.Repeat("x", 100)} {
		got := uniqueName(t, prefix, '-', 63)
		if !re.MatchString(got) || len(got) > 63 {
			t.Errorf("uniqueName(%q) = %q", prefix, got)
		}
	}
	if a, b := uniqueName(t, "x", '_', 63), uniqueName(t, "x", '_', 63); a == b {
		t.Errorf("two names equal: %s", a)
	}
}
