package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/testenv"
)

// TestServeLeaderElection: two serve processes, one leads (schedules),
// kill -9 it, the other takes over within the lease duration, and at no
// moment do both schedule — in both election modes: a Lease on the real
// Kubernetes API server, and a lease object in the primary repository on
// the real S3 server (conditional writes).
func TestServeLeaderElection(t *testing.T) {
	t.Parallel()
	const lease, retry = 4 * time.Second, 500 * time.Millisecond
	for _, mode := range []string{"kubernetes", "repository"} {
		t.Run(mode, func(t *testing.T) {
			s3 := testenv.S3(t)
			primaryURL := testenv.S3URL(t, s3.Endpoint, testenv.NewBucket(t, s3.Endpoint), "linkdr")
			db, dbName := servedDatabase(t, "serve_ha")
			election := fmt.Sprintf("{mode: repository, lease_duration: %s, renew_deadline: 3s, retry_period: %s}", lease, retry)
			var args []string
			if mode == "kubernetes" {
				ns := testenv.NewNamespace(t)
				election = fmt.Sprintf("{mode: kubernetes, namespace: %s, lease_duration: %s, renew_deadline: 3s, retry_period: %s}", ns, lease, retry)
				args = []string{"--kubeconfig", testenv.Kubeconfig(t)}
			}
			planPath := servePlan(t, t.TempDir(), fmt.Sprintf(`repositories:
  primary: {url: %q}
stores:
%sretention: {schedule: "@every 5s"}
verify: {schedule: "@every 1h"}
serve:
  token_file: serve.token
  grace_period: 5s
  refresh_interval: 1s
  leader_election: %s
`, primaryURL, pgStore("users-db", db, dbName, "@every 2s", "1m"), election), primaryURL)
			env := []string{"LINKDR_LEASE_TTL=3s"}
			procs := map[string]*serveProc{
				"a": startServe(t, "a", planPath, testenv.FreePort(t), env, args...),
				"b": startServe(t, "b", planPath, testenv.FreePort(t), env, args...),
			}
			for _, p := range procs {
				p.waitReady(60 * time.Second)
			}
			var leaderName string
			testenv.WaitFor(t, 30*time.Second, func() error {
				leading := 0
				for name, p := range procs {
					st, err := p.status()
					if err != nil {
						return err
					}
					if st.Leader.IsLeader {
						leading++
						leaderName = name
					}
				}
				if leading != 1 {
					return fmt.Errorf("%d replicas lead", leading)
				}
				return nil
			})
			old := procs[leaderName]
			follower := procs[map[string]string{"a": "b", "b": "a"}[leaderName]]
			oldStatus, _ := old.status()
			testenv.WaitFor(t, 30*time.Second, func() error {
				st, err := follower.status()
				if err != nil {
					return err
				}
				if !st.Leader.Known || st.Leader.Leader != oldStatus.Leader.Identity || st.Leader.IsLeader {
					return fmt.Errorf("follower sees %+v", st.Leader)
				}
				if len(st.Runs) != 0 {
					return fmt.Errorf("the follower ran jobs: %+v", st.Runs)
				}
				return nil
			})
			// The leader has been scheduling backups.
			testenv.WaitFor(t, 60*time.Second, func() error {
				if n := strings.Count(old.logText(), `"msg":"job finished","job":"backup users-db logical"`); n < 2 {
					return fmt.Errorf("%d backups finished on the leader", n)
				}
				return nil
			})

			killed := time.Now()
			old.cmd.Process.Kill()
			<-old.done
			testenv.WaitFor(t, lease+3*retry+5*time.Second, func() error {
				st, err := follower.status()
				if err != nil {
					return err
				}
				if !st.Leader.IsLeader {
					return fmt.Errorf("not leading yet: %+v", st.Leader)
				}
				return nil
			})
			took := time.Since(killed)
			t.Logf("%s took over %s after kill -9 of the leader (lease duration %s)", mode, took.Round(10*time.Millisecond), lease)
			testenv.WaitFor(t, 60*time.Second, func() error {
				if !strings.Contains(follower.logText(), `"msg":"job finished","job":"backup users-db logical"`) {
					return fmt.Errorf("no backup by the new leader yet")
				}
				return nil
			})
			if code := follower.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
				t.Fatalf("new leader exit %d", code)
			}
			checkNeverBoth(t, old, follower)
		})
	}
}

// checkNeverBoth reads both logs: every job start of a replica lies within
// its own leadership, and the new leader's leadership began after the old
// leader's last job start.
func checkNeverBoth(t *testing.T, old, next *serveProc) {
	t.Helper()
	leadStart := func(p *serveProc) (time.Time, []logEvent) {
		var became time.Time
		var jobs []logEvent
		for _, e := range p.events() {
			switch e.Msg {
			case "became leader":
				if became.IsZero() {
					became = e.Time
				}
			case "job started":
				jobs = append(jobs, e)
			}
		}
		return became, jobs
	}
	oldBecame, oldJobs := leadStart(old)
	nextBecame, nextJobs := leadStart(next)
	if oldBecame.IsZero() || nextBecame.IsZero() || len(oldJobs) == 0 || len(nextJobs) == 0 {
		t.Fatalf("logs incomplete: old became %v with %d jobs, next became %v with %d jobs", oldBecame, len(oldJobs), nextBecame, len(nextJobs))
	}
	for _, j := range oldJobs {
		if j.Time.Before(oldBecame) {
			t.Errorf("old leader started %s at %s before it led (%s)", j.Job, j.Time, oldBecame)
		}
		if !j.Time.Before(nextBecame) {
			t.Errorf("old leader started %s at %s after the new one led (%s)", j.Job, j.Time, nextBecame)
		}
	}
	for _, j := range nextJobs {
		if j.Time.Before(nextBecame) {
			t.Errorf("new leader started %s at %s before it led (%s)", j.Job, j.Time, nextBecame)
		}
	}
	t.Logf("old leader: %d job starts from %s; new leader: %d from %s", len(oldJobs), oldBecame.Format(time.StampMilli), len(nextJobs), nextBecame.Format(time.StampMilli))
}

// TestServeRepositoryUnreachable: when the primary repository stops
// answering, /readyz turns red and the metrics show it; when it answers
// again serve recovers by itself and backs up again.
func TestServeRepositoryUnreachable(t *testing.T) {
	t.Parallel()
	s3 := testenv.S3(t)
	bucket := testenv.NewBucket(t, s3.Endpoint)
	u, _ := url.Parse(s3.Endpoint)
	px := newProxy(t, u.Host)
	viaProxy := testenv.S3URL(t, "http://"+px.addr, bucket, "linkdr")
	db, dbName := servedDatabase(t, "serve_unreach")
	planPath := servePlan(t, t.TempDir(), fmt.Sprintf(`repositories:
  primary: {url: %q}
stores:
%sserve:
  token_file: serve.token
  metrics_public: true
  refresh_interval: 1s
  leader_election: {mode: none}
`, viaProxy, pgStore("users-db", db, dbName, "@every 2s", "1m")), viaProxy)
	// A backup cut off mid-way cannot release its store lease: the next
	// backups wait for it to expire (LINKDR_LEASE_TTL, 2m by default).
	p := startServe(t, "serve", planPath, testenv.FreePort(t), []string{"LINKDR_LEASE_TTL=4s"})
	p.waitReady(60 * time.Second)
	up := func(want string) func() error {
		return func() error {
			code, body, err := p.do("GET", "/metrics", "", nil)
			if err != nil || code != 200 {
				return fmt.Errorf("metrics: %d %v", code, err)
			}
			if v, _ := metric(body, `linkdr_repository_up{repository="primary"}`); v != want {
				return fmt.Errorf("linkdr_repository_up %q, want %s", v, want)
			}
			return nil
		}
	}
	backupsDone := func() int {
		return strings.Count(p.logText(), `"msg":"job finished","job":"backup users-db logical"`)
	}
	testenv.WaitFor(t, 60*time.Second, func() error {
		if backupsDone() == 0 {
			return fmt.Errorf("no backup yet")
		}
		return nil
	})

	px.Stop()
	testenv.WaitFor(t, 60*time.Second, func() error {
		code, body, err := p.do("GET", "/readyz", "", nil)
		if err != nil || code != 503 || !strings.Contains(string(body), "primary unreachable") {
			return fmt.Errorf("readyz %d %v: %s", code, err, body)
		}
		return nil
	})
	testenv.WaitFor(t, 30*time.Second, up("0"))
	if code, _, _ := p.do("GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("healthz %d while the repository is away: serve must stay alive", code)
	}
	before := backupsDone()

	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitReady(60 * time.Second)
	testenv.WaitFor(t, 30*time.Second, up("1"))
	testenv.WaitFor(t, 60*time.Second, func() error {
		if backupsDone() <= before {
			return fmt.Errorf("no backup since the repository came back")
		}
		return nil
	})
	t.Logf("backup runs that failed during the outage: %d", strings.Count(p.logText(), `"msg":"job failed","job":"backup users-db logical"`))
}

// TestServePrometheusAlert: a real Prometheus scrapes serve (with the
// token) and evaluates the shipped rules; backups stop (the database is
// gone) and the RPO alert fires through Prometheus's alerts API.
func TestServePrometheusAlert(t *testing.T) {
	t.Parallel()
	db, dbName := servedDatabase(t, "serve_prom")
	dir := t.TempDir()
	repoURL := "file://" + filepath.Join(dir, "repo")
	planPath := servePlan(t, dir, fmt.Sprintf(`repositories:
  primary: {url: %q}
stores:
%sserve:
  token_file: serve.token
  refresh_interval: 1s
  leader_election: {mode: none}
`, repoURL, pgStore("users-db", db, dbName, "@every 2s", "15s")), repoURL)
	port := testenv.FreePort(t)
	p := startServe(t, "serve", planPath, port, nil)
	p.waitReady(60 * time.Second)

	root, _ := testenv.ModuleRoot()
	promPort := testenv.FreePort(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: linkdr
    authorization: {type: Bearer, credentials_file: %q}
    static_configs: [{targets: ["127.0.0.1:%d"]}]
`, filepath.Join(root, "deploy/prometheus/linkdr-rules.yaml"), filepath.Join(dir, "serve.token"), port)), 0o644)
	prom := exec.Command(testenv.Bin(t, "prometheus"), "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	promLog, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	prom.Stdout, prom.Stderr = promLog, promLog
	prom.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Process.Kill(); prom.Wait() })
	promURL := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	getJSON := func(path string, v any) error {
		resp, err := http.Get(promURL + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
		return json.Unmarshal(b, v)
	}
	testenv.WaitFor(t, 30*time.Second, func() error {
		resp, err := http.Get(promURL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("prometheus not ready: %d", resp.StatusCode)
		}
		return nil
	})
	type alert struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
	}
	alerts := func() (map[string]string, error) {
		var r struct {
			Data struct {
				Alerts []alert `json:"alerts"`
			} `json:"data"`
		}
		if err := getJSON("/api/v1/alerts", &r); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, a := range r.Data.Alerts {
			if a.Labels["store"] == "users-db" || a.Labels["store"] == "" {
				out[a.Labels["alertname"]] = a.State
			}
		}
		return out, nil
	}
	// Prometheus scrapes serve with the token and sees a healthy store.
	testenv.WaitFor(t, 60*time.Second, func() error {
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := getJSON("/api/v1/query?query="+url.QueryEscape(`linkdr_rpo_exposure_seconds{store="users-db"} < 10`), &r); err != nil {
			return err
		}
		if len(r.Data.Result) == 0 {
			return fmt.Errorf("no fresh exposure scraped yet")
		}
		return nil
	})
	if a, err := alerts(); err != nil || a["LinkdrRPOAtRisk"] != "" || a["LinkdrRPOBreached"] != "" {
		t.Fatalf("alerts while backups run: %v %v", a, err)
	}

	// Backups stop: the database disappears.
	if err := sqlExec(testenv.PostgresURL(t), "DROP DATABASE "+dbName+" WITH (FORCE)"); err != nil {
		t.Fatal(err)
	}
	sawAtRisk := false
	testenv.WaitFor(t, 90*time.Second, func() error {
		a, err := alerts()
		if err != nil {
			return err
		}
		if a["LinkdrRPOAtRisk"] == "firing" {
			sawAtRisk = true
		}
		if a["LinkdrRPOBreached"] != "firing" {
			return fmt.Errorf("alerts %v", a)
		}
		return nil
	})
	t.Logf("RPO at risk seen firing on the way: %v", sawAtRisk)
	if code, body := p.get("/api/v1/status"); code != 200 || !strings.Contains(string(body), `"result": "failed"`) {
		t.Fatalf("status does not show the failing backups: %d", code)
	}
}

// TestServeDashboard renders the dashboard in headless Chromium (signing
// in through ?token=, which sets the cookie and redirects) and finds every
// store of the plan, its RPO bar and timeline.
func TestServeDashboard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	repoURL := "file://" + filepath.Join(dir, "repo")
	db1, n1 := servedDatabase(t, "dash_users")
	db2, n2 := servedDatabase(t, "dash_orders")
	planPath := servePlan(t, dir, fmt.Sprintf(`repositories:
  primary: {url: %q}
stores:
%s%s%sserve:
  token_file: serve.token
  refresh_interval: 1s
  leader_election: {mode: none}
`, repoURL, pgStore("users-db", db1, n1, "@every 5s", "1m"), pgStore("orders-db", db2, n2, "@every 5s", "1m"),
		// a store whose server does not exist: never backed up, failing
		"  ghost-db:\n    kind: postgres\n    url: postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2\n    backups: [{method: logical, schedule: \"@every 1m\"}]\n"), repoURL)
	p := startServe(t, "serve", planPath, testenv.FreePort(t), nil)
	p.waitReady(60 * time.Second)
	testenv.WaitFor(t, 60*time.Second, func() error {
		code, body := p.get("/api/v1/status")
		if code != 200 || strings.Count(string(body), `"latest_id"`) < 2 || !strings.Contains(string(body), `"job": "backup ghost-db logical"`) {
			return fmt.Errorf("stores not backed up yet")
		}
		return nil
	})
	chromium := testenv.Bin(t, "chromium")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "chromium")}
	out, err := exec.Command(chromium, append(flags, "--dump-dom", p.url+"/?token="+testToken)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{`id="store-users-db"`, `id="store-orders-db"`, `id="store-ghost-db"`, "RPO exposure", "<svg", `id="failures"`, "backup ghost-db logical (failed)", "this replica leads"} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", `src="http`, `href="http`} {
		if strings.Contains(dom, bad) {
			t.Errorf("dashboard has %q: no scripts or external assets allowed", bad)
		}
	}
	shot := filepath.Join(dir, "dashboard.png")
	if err := exec.Command(chromium, append(flags, "--window-size=1200,1400", "--screenshot="+shot, p.url+"/?token="+testToken)...).Run(); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Fatalf("screenshot: %v", err)
	}
	if keep := os.Getenv("LINKDR_TEST_KEEP_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(keep, b, 0o644)
	}
	if code, _, _ := p.do("GET", "/", "", nil); code != 401 {
		t.Fatalf("dashboard without the token: %d", code)
	}
}
