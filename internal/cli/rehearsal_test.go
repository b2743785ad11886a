package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// recorder is a local stand-in for Slack or PagerDuty: it keeps every
// JSON body it is sent.
type recorder struct {
	mu     sync.Mutex
	bodies []map[string]any
	srv    *httptest.Server
}

func newRecorder(t *testing.T, status int) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) all() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

// playController stands in for the controllers and kubelets this API
// server does not have: every Deployment and StatefulSet in ns reports its
// desired replicas as updated, ready and available.
func playController(t *testing.T, ns string) {
	t.Setenv("KUBECONFIG", testenv.Kubeconfig(t))
	c, err := kube.Load(kube.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			deps, _ := c.Typed.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			if deps != nil {
				for _, d := range deps.Items {
					n := *d.Spec.Replicas
					if d.Status.ObservedGeneration == d.Generation && d.Status.AvailableReplicas == n && d.Status.Replicas == n {
						continue
					}
					d.Status.ObservedGeneration, d.Status.Replicas, d.Status.UpdatedReplicas = d.Generation, n, n
					d.Status.ReadyReplicas, d.Status.AvailableReplicas = n, n
					_, _ = c.Typed.AppsV1().Deployments(ns).UpdateStatus(ctx, &d, metav1.UpdateOptions{})
				}
			}
			sts, _ := c.Typed.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
			if sts != nil {
				for _, s := range sts.Items {
					n := *s.Spec.Replicas
					if s.Status.ObservedGeneration == s.Generation && s.Status.ReadyReplicas == n {
						continue
					}
					s.Status.ObservedGeneration, s.Status.Replicas, s.Status.ReadyReplicas = s.Generation, n, n
					s.Status.UpdatedReplicas, s.Status.CurrentReplicas, s.Status.AvailableReplicas = n, n, n
					_, _ = c.Typed.AppsV1().StatefulSets(ns).UpdateStatus(ctx, &s, metav1.UpdateOptions{})
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func withDB(pgURL, db string) string {
	return strings.Replace(pgURL, "/postgres?", "/"+db+"?", 1)
}

// TestRegionalFailoverRehearsal runs the example plan's regional-failure
// scenario, as written in examples/link/linkdr.yaml, against servers on
// this machine: a primary and a DR PostgreSQL, Redis Cluster, Qdrant (the
// OpenAPI-validated test server) and S3 bucket each, a BIND zone with
// TSIG, the Kubernetes API server, local Slack and PagerDuty receivers and
// an HTTP server playing the application in the DR region. Only the
// environment (servers, credentials, names) is swapped for local ones; the
// phases and steps are the plan's, and all four stores are restored.
func TestRegionalFailoverRehearsal(t *testing.T) {
	bin := buildLinkdr(t)
	dir := t.TempDir()

	primary := testenv.NewPostgres(t, testenv.PostgresOptions{})
	dr := testenv.NewPostgres(t, testenv.PostgresOptions{})
	if err := sqlExec(primary.URL, "CREATE DATABASE link_users"); err != nil {
		t.Fatal(err)
	}
	if err := sqlExec(withDB(primary.URL, "link_users"), `
		CREATE TABLE users (id int PRIMARY KEY, email text, created_at timestamptz DEFAULT now());
		INSERT INTO users (id, email) SELECT i, 'u' || i || '@linkapp.test' FROM generate_series(1, 5000) i;
		CREATE TABLE messages (id bigint PRIMARY KEY, sender int, body text);
		INSERT INTO messages SELECT i, i % 5000, md5(i::text) FROM generate_series(1, 20000) i;`); err != nil {
		t.Fatal(err)
	}
	// Sessions: a Redis Cluster in each region (3 masters, no replicas).
	redisPrimary, redisDR := testenv.NewRedisCluster(t, 3, 0), testenv.NewRedisCluster(t, 3, 0)
	sessionKeys := seedSessions(t, redisPrimary, 400)
	// Vectors: a Qdrant node in each region, with the production API key.
	qdrantPrimary := qdranttest.New(t, qdranttest.Options{APIKey: "rehearsal-qdrant-key", YellowPolls: 2})
	qdrantDR := qdranttest.New(t, qdranttest.Options{APIKey: "rehearsal-qdrant-key"})
	seedVectors(qdrantPrimary)
	// Media: the uploads bucket in us-west-2, its replica and an empty
	// bucket to restore into in us-east-1.
	s3info := testenv.S3(t)
	mediaBucket := testenv.NewBucket(t, s3info.Endpoint)
	replicaBucket, restoredBucket := testenv.NewBucket(t, s3info.DREndpoint), testenv.NewBucket(t, s3info.DREndpoint)
	seedMedia(t, s3info.Endpoint, mediaBucket, 60)
	mediaURL := testenv.S3URL(t, s3info.Endpoint, mediaBucket, "uploads/")
	replicaURL := testenv.S3URL(t, s3info.DREndpoint, replicaBucket, "uploads/")
	restoredURL := testenv.S3URL(t, s3info.DREndpoint, restoredBucket, "uploads/")

	zone := testenv.NewDNS(t)
	ns := testenv.NewNamespace(t)
	playController(t, ns)
	kcfg, err := clientcmd.LoadFromFile(testenv.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	kubeAPI := strings.TrimPrefix(testenv.Kube(t).Server, "https://")

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/health":
			io.WriteString(w, `{"status":"ok","region":"us-east-1"}`)
		case r.URL.Path == "/v1/auth/login" && r.Method == http.MethodPost:
			io.WriteString(w, `{"token":"t"}`)
		case r.URL.Path == "/":
			io.WriteString(w, "<html>Link</html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer app.Close()
	slack, pagerduty := newRecorder(t, http.StatusOK), newRecorder(t, http.StatusAccepted)

	// The example plan, with this machine's environment swapped in.
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "age.key"), kp.IdentityFile("rehearsal"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, _ := testenv.ModuleRoot()
	src, err := os.ReadFile(filepath.Join(root, "examples", "link", "linkdr.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	copyDir(t, filepath.Join(root, "examples", "link", "k8s"), filepath.Join(dir, "k8s"))
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	doc["encryption"] = map[string]any{"recipients": []any{kp.Recipient}, "identity_file": filepath.Join(dir, "age.key")}
	doc["repositories"] = map[string]any{
		"primary": map[string]any{"url": "file://" + filepath.Join(dir, "repo-us-west-2")},
		"dr":      map[string]any{"url": "file://" + filepath.Join(dir, "repo-us-east-1")},
	}
	// Backups go straight to the DR repository here; in production the
	// daemon copies them there.
	stores := doc["stores"].(map[string]any)
	if len(stores) != 4 {
		t.Fatalf("the example plan has %d stores, the rehearsal swaps in 4", len(stores))
	}
	doc["stores"] = map[string]any{
		"users-db": map[string]any{
			"kind": "postgres", "url": primary.URL, "repository": "dr", "databases": []any{"link_users"},
			"backups": []any{map[string]any{"method": "logical", "schedule": "*/30 * * * *"}},
		},
		"sessions": map[string]any{
			"kind": "redis", "url": "redis://" + redisPrimary[0] + "?cluster=true", "repository": "dr",
			"backups": []any{map[string]any{"method": "resp", "schedule": "*/15 * * * *"}},
		},
		"vectors": map[string]any{
			"kind": "qdrant", "url": qdrantPrimary.URL(), "api_key": "rehearsal-qdrant-key", "repository": "dr",
			"collections": []any{"posts", "profiles"},
			"backups":     []any{map[string]any{"method": "snapshot", "schedule": "*/30 * * * *"}},
		},
		"media": map[string]any{
			"kind": "s3", "url": mediaURL, "repository": "dr", "replica": map[string]any{"url": replicaURL},
			"backups": []any{map[string]any{"method": "objects", "schedule": "*/15 * * * *"}},
		},
	}
	doc["dns"] = map[string]any{"providers": map[string]any{"linkapp": map[string]any{
		"type": "rfc2136", "zone": zone.Zone, "server": zone.Addr, "tsig_name": zone.TSIGName,
		"tsig_algorithm": zone.TSIGAlgorithm, "tsig_secret": zone.TSIGSecret,
	}}}
	doc["notifications"] = map[string]any{"channels": map[string]any{
		"slack":     map[string]any{"type": "slack", "url": slack.srv.URL + "/services/T0/B0/rehearsal"},
		"pagerduty": map[string]any{"type": "pagerduty", "routing_key": "rehearsal-routing-key-0123456789", "url": pagerduty.srv.URL + "/v2/enqueue"},
	}}
	doc["kubernetes"] = map[string]any{"kubeconfig": testenv.Kubeconfig(t), "context": kcfg.CurrentContext, "namespace": ns}
	vars := doc["vars"].(map[string]any)
	for k, v := range map[string]string{
		"namespace": ns, "primary_context": kcfg.CurrentContext, "dr_context": kcfg.CurrentContext, "dr_kube_api": kubeAPI,
		"api_health": app.URL + "/health", "web_url": app.URL + "/", "login_url": app.URL + "/v1/auth/login",
		"primary_region_health": "http://" + closedPort(t) + "/health",
		"primary_api_target":    "10.0.1.10", "dr_api_target": "10.1.0.10",
		"primary_web_target": "api." + zone.Zone, "dr_web_target": "api-dr." + zone.Zone,
		"dr_postgres_addr": fmt.Sprintf("127.0.0.1:%d", dr.Port), "dr_postgres_url": withDB(dr.URL, "link_users"),
		"dr_redis_addr": redisDR[0], "dr_redis_url": "redis://" + redisDR[0],
		"dr_qdrant_addr": strings.TrimPrefix(qdrantDR.URL(), "http://"), "dr_qdrant_url": qdrantDR.URL(),
		"dr_media_url": restoredURL,
	} {
		vars[k] = v
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	planPath := filepath.Join(dir, "linkdr.yaml")
	if err := os.WriteFile(planPath, out, 0o644); err != nil {
		t.Fatal(err)
	}

	c := &cliEnv{t: t, bin: bin, dir: dir}
	c.env = append(os.Environ(), "LINKDR_CONFIG="+planPath, "LINKDR_STATE_DIR="+filepath.Join(dir, "state"), "LINKDR_USER=rehearsal@linkdr")
	mustRun := func(args ...string) string {
		t.Helper()
		out, code := c.run(args...)
		if code != 0 {
			t.Fatalf("linkdr %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	mustRun("plan", "check")
	mustRun("repo", "init")
	for _, s := range []string{"users-db", "sessions", "vectors", "media"} {
		mustRun("backup", s)
	}
	dry := mustRun("runbook", "run", "regional-failure", "--dry-run")
	if !strings.Contains(dry, "26 steps, 0 preconditions failed; nothing changed") {
		t.Fatalf("dry run:\n%s", dry)
	}
	if n := len(slack.all()) + len(pagerduty.all()); n != 0 {
		t.Fatalf("the dry run sent %d notifications", n)
	}

	// The rehearsal.
	start := time.Now()
	run := mustRun("runbook", "run", "regional-failure", "--yes")
	elapsed := time.Since(start)
	t.Logf("linkdr runbook run regional-failure --yes (%s):\n%s", elapsed.Round(time.Millisecond), run)
	if !strings.Contains(run, "SUCCEEDED") {
		t.Fatalf("run did not succeed:\n%s", run)
	}

	// The DR database holds the primary's data.
	for _, q := range []string{"SELECT count(*) FROM users", "SELECT count(*) FROM messages", "SELECT sum(hashtext(body)) FROM messages"} {
		if p, d := query(t, withDB(primary.URL, "link_users"), q), query(t, withDB(dr.URL, "link_users"), q); p != d {
			t.Fatalf("%s: primary %s, DR %s", q, p, d)
		}
	}
	// So do the DR Redis Cluster, Qdrant node and media bucket.
	assertSessionsRestored(t, redisPrimary, redisDR, sessionKeys)
	assertVectorsRestored(t, qdrantPrimary, qdrantDR)
	media, restored := listETags(t, s3info.Endpoint, mediaBucket, "uploads/"), listETags(t, s3info.DREndpoint, restoredBucket, "uploads/")
	if len(media) != 60 || !reflect.DeepEqual(media, restored) {
		t.Fatalf("DR media: %d objects, primary %d (same keys and ETags: %v)", len(restored), len(media), reflect.DeepEqual(media, restored))
	}
	// DNS points at us-east-1, as the authoritative server says.
	if got := digShort(t, zone.Addr, "api."+zone.Zone, "A"); got != "10.1.0.10" {
		t.Fatalf("api resolves to %q", got)
	}
	if got := digShort(t, zone.Addr, "www."+zone.Zone, "CNAME"); got != "api-dr."+zone.Zone {
		t.Fatalf("www is %q", got)
	}
	// The DR deployments are scaled as the runbook says.
	kc, err := kube.Load(kube.Options{Kubeconfig: testenv.Kubeconfig(t), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int32{"api-gateway": 10, "user-svc": 8, "chat-svc": 3} {
		d, err := kc.Typed.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil || *d.Spec.Replicas != want {
			t.Fatalf("deployment %s: %v replicas, want %d (%v)", name, d.Spec.Replicas, want, err)
		}
	}
	if _, err := kc.Typed.AppsV1().StatefulSets(ns).Get(context.Background(), "postgres-primary", metav1.GetOptions{}); err != nil {
		t.Fatalf("DR postgres statefulset: %v", err)
	}
	// People were told: PagerDuty triggered, Slack got the alert and updates.
	pd := pagerduty.all()
	if len(pd) == 0 || pd[0]["event_action"] != "trigger" {
		t.Fatalf("pagerduty got %v", pd)
	}
	incID := pd[0]["dedup_key"].(string)
	sl := slack.all()
	if len(sl) != 3 || !strings.HasPrefix(sl[0]["text"].(string), "🚨 INCIDENT ALERT\nService: Link App\nStatus: Investigating\nImpact: High") {
		t.Fatalf("slack got %v", sl)
	}

	// Timeline, resolution and post-mortem.
	tl := mustRun("incident", "timeline", incID)
	for _, want := range []string{"Incident opened", "Runbook regional-failure started", "declare-failover approved by rehearsal@linkdr", "restore-users-db succeeded", "restore-sessions succeeded", "restore-vectors succeeded", "restore-media succeeded", "dns-api succeeded", "Phase traffic succeeded", "Run succeeded"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}
	mustRun("incident", "resolve", incID, "--root-cause", "rehearsal: us-west-2 made unreachable on purpose")
	if pd := pagerduty.all(); pd[len(pd)-1]["event_action"] != "resolve" || pd[len(pd)-1]["dedup_key"] != incID {
		t.Fatalf("pagerduty did not get the resolve: %v", pd[len(pd)-1])
	}
	pmPath := filepath.Join(dir, "postmortem.md")
	mustRun("incident", "postmortem", incID, "--file", pmPath)
	pm, _ := os.ReadFile(pmPath)
	for _, want := range []string{"# Post-mortem (draft): Regional failure", "## Phases against budgets",
		"| assessment | 15m |", "| database | 1h30m |", "| application | 1h30m |", "| traffic | 45m |",
		"**RTO**", "against an objective of 4h: met", "**RPO** (users-db)", "within the objective of 1h",
		"Manual: 1 approvals", "## Post-incident checklist", "- [ ] Schedule the post-mortem meeting"} {
		if !strings.Contains(string(pm), want) {
			t.Errorf("post-mortem lacks %q", want)
		}
	}
	t.Logf("post-mortem:\n%s", pm)
	if out := os.Getenv("LINKDR_REHEARSAL_OUT"); out != "" {
		_ = os.WriteFile(filepath.Join(out, "rehearsal-run.txt"), []byte(run), 0o644)
		_ = os.WriteFile(filepath.Join(out, "rehearsal-timeline.txt"), []byte(tl), 0o644)
		_ = os.WriteFile(filepath.Join(out, "rehearsal-postmortem.md"), pm, 0o644)
	}
	// The journal is in the DR repository too: a fresh machine can read it.
	runs, _ := filepath.Glob(filepath.Join(dir, "repo-us-east-1", "runs", "run-*", "journal.jsonl"))
	incs, _ := filepath.Glob(filepath.Join(dir, "repo-us-east-1", "runs", "inc-*", "journal.jsonl"))
	if len(runs) != 1 || len(incs) != 1 {
		t.Fatalf("journals in the DR repository: runs %v, incidents %v", runs, incs)
	}
	c.env = append(os.Environ(), "LINKDR_CONFIG="+planPath, "LINKDR_STATE_DIR="+filepath.Join(dir, "fresh-machine"))
	if st := mustRun("runbook", "status", filepath.Base(filepath.Dir(runs[0]))); !strings.Contains(st, "SUCCEEDED") {
		t.Fatalf("status from the repository alone:\n%s", st)
	}
}

func query(t *testing.T, url, q string) string {
	t.Helper()
	out, err := exec.Command(testenv.Bin(t, "psql"), "-Atc", q, url).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %s: %v: %s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}

func digShort(t *testing.T, server, name, typ string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(server)
	out, err := exec.Command(testenv.Bin(t, "dig"), "+short", "+norec", "@"+host, "-p", port, name, typ).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	sort.Strings(f)
	return strings.Join(f, " ")
}
