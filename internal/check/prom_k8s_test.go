package check_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkapp/linkdr/internal/check"
	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/testenv"
)

// exporter serves http_requests_total counters that grow by total per
// scrape, errors of them with code 500.
type exporter struct {
	mu            sync.Mutex
	ok, errs      float64
	total, errPer float64
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.ok += e.total - e.errPer
	e.errs += e.errPer
	fmt.Fprintf(w, "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} %g\nhttp_requests_total{code=\"500\"} %g\n", e.ok, e.errs)
	e.mu.Unlock()
}

func (e *exporter) set(total, errPer float64) {
	e.mu.Lock()
	e.total, e.errPer = total, errPer
	e.mu.Unlock()
}

// startPrometheus runs a Prometheus of the test's own scraping target
// every second, and returns its URL once it is ready.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: app\n    static_configs: [{targets: [%q]}]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(testenv.Bin(t, "prometheus"), "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	log, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	url := "http://" + addr
	testenv.WaitFor(t, 30*time.Second, func() error {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	return url
}

func TestPrometheus(t *testing.T) {
	exp := &exporter{}
	exp.set(1000, 2) // 0.2 % errors
	srv := httptest.NewServer(exp)
	defer srv.Close()
	prom := startPrometheus(t, strings.TrimPrefix(srv.URL, "http://"))
	q := `sum(rate(http_requests_total{code=~"5.."}[5s])) / sum(rate(http_requests_total[5s]))`
	p := loadPlan(t, fmt.Sprintf(`checks:
  error-rate: {type: prometheus, url: %q, query: %q, condition: "samples == 1 && value < 0.01"}
  bad-query: {type: prometheus, url: %q, query: "sum(", condition: "value < 1"}
`, prom, q, prom))
	// Rates need two scrapes: wait until the query has an answer.
	testenv.WaitFor(t, 60*time.Second, func() error {
		if r := run(t, p, "error-rate")[0]; !r.OK {
			return fmt.Errorf("%s", r.Message)
		}
		return nil
	})
	want(t, run(t, p, "bad-query")[0], check.StatusError, "bad_data")
	exp.set(1000, 100) // 10 % errors
	testenv.WaitFor(t, 60*time.Second, func() error {
		r := run(t, p, "error-rate")[0]
		if r.Status != check.StatusFail {
			return fmt.Errorf("still passing: %s", r.Message)
		}
		if v, _ := r.Observed["value"].(float64); v < 0.01 {
			return fmt.Errorf("value %v", v)
		}
		return nil
	})
}

func TestKubernetes(t *testing.T) {
	ns := testenv.NewNamespace(t)
	kc := testenv.Kubeconfig(t)
	cs, err := kube.Client(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Nodes in two zones (no kubelet runs: the objects are all there is).
	var nodes []string
	for i, zone := range []string{"us-west-2a", "us-west-2b"} {
		n := fmt.Sprintf("%s-node-%d", ns, i)
		_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n,
			Labels: map[string]string{"topology.kubernetes.io/zone": zone}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		t.Cleanup(func() { cs.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{}) })
	}
	replicas := int32(3)
	labels := map[string]string{"app": "api-gateway"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "api-gateway"}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "api", Image: "link/api:1"}}}}}}
	if d, err = cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := loadPlan(t, fmt.Sprintf(`checks:
  api: {type: kubernetes, kubeconfig: %q, namespace: %s, deployment: api-gateway}
  spread: {type: kubernetes, kubeconfig: %q, namespace: %s, deployment: api-gateway, condition: "pods == 3 && zones >= 2"}
  missing: {type: kubernetes, kubeconfig: %q, namespace: %s, deployment: nope}
`, kc, ns, kc, ns, kc, ns))
	res := run(t, p, "api", "spread", "missing")
	want(t, res[0], check.StatusFail, "ready_replicas=0 replicas=3")
	want(t, res[1], check.StatusFail, "pods=0 zones=0")
	want(t, res[2], check.StatusError, `"nope" not found`)

	// What the controllers and scheduler would do: the namespace's default
	// service account, pods bound to nodes in both zones, and the status
	// the deployment controller reports.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("api-gateway-%d", i), Labels: labels},
			Spec: corev1.PodSpec{NodeName: nodes[i%2], Containers: []corev1.Container{{Name: "api", Image: "link/api:1"}}}}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d.Status = appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, UpdatedReplicas: 3}
	if _, err := cs.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	res = run(t, p, "api", "spread")
	want(t, res[0], check.StatusPass, "ready_replicas=3 replicas=3")
	want(t, res[1], check.StatusPass, "pods=3 zones=2")
}
