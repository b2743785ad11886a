package action

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/testenv"
)

// kubeEnv gives a test a namespace on the real API server and the clients
// to read objects back with.
func kubeEnv(t *testing.T) (*Env, *kube.Clients, string, *bytes.Buffer) {
	t.Helper()
	ns := testenv.NewNamespace(t)
	t.Setenv("KUBECONFIG", testenv.Kubeconfig(t))
	c, err := kube.Load(kube.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	return &Env{Output: &out}, c, ns, &out
}

func run(t *testing.T, env *Env, name string, p Params) Result {
	t.Helper()
	a, ok := Get(name)
	if !ok {
		t.Fatalf("no action %s", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := a.Run(ctx, env, p)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

const deployments = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: user-svc, labels: {tier: write}}
spec:
  replicas: 3
  selector: {matchLabels: {app: user-svc}}
  template:
    metadata: {labels: {app: user-svc}}
    spec: {containers: [{name: app, image: link/user-svc:1}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: chat-svc, labels: {tier: write}}
spec:
  replicas: 2
  selector: {matchLabels: {app: chat-svc}}
  template:
    metadata: {labels: {app: chat-svc}}
    spec: {containers: [{name: app, image: link/chat-svc:1}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: postgres-config}
data: {readonly: "false"}
`

func replicas(t *testing.T, c *kube.Clients, ns, name string) int32 {
	t.Helper()
	d, err := c.Typed.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}

func TestKubernetes(t *testing.T) {
	env, c, ns, out := kubeEnv(t)
	p := func(kv ...any) Params {
		m := Params{"namespace": ns}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	t.Run("ApplyServerSide", func(t *testing.T) {
		res := run(t, env, "k8s.apply", p("manifest", deployments))
		if got := res["applied"].([]string); len(got) != 3 || got[0] != "deployment/"+ns+"/user-svc" {
			t.Fatalf("applied %v", got)
		}
		d, err := c.Typed.AppsV1().Deployments(ns).Get(context.Background(), "user-svc", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 3 || d.ManagedFields[0].Manager != DefaultFieldManager || d.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
			t.Fatalf("not applied server-side by linkdr: replicas %d, managed %+v", *d.Spec.Replicas, d.ManagedFields)
		}
	})

	t.Run("ScaleToZeroAndBack", func(t *testing.T) {
		res := run(t, env, "k8s.scale", p("selector", "tier=write", "replicas", 0))
		prev := res["previous"].(map[string]any)
		if prev["user-svc"] != 3 || prev["chat-svc"] != 2 {
			t.Fatalf("previous %v", prev)
		}
		if replicas(t, c, ns, "user-svc") != 0 || replicas(t, c, ns, "chat-svc") != 0 {
			t.Fatal("not scaled to 0")
		}
		run(t, env, "k8s.scale", p("names", []any{"user-svc"}, "replicas", "3"))
		run(t, env, "k8s.scale", p("name", "chat-svc", "replicas", 2))
		if replicas(t, c, ns, "user-svc") != 3 || replicas(t, c, ns, "chat-svc") != 2 {
			t.Fatal("not scaled back")
		}
	})

	t.Run("PatchConfigMap", func(t *testing.T) {
		run(t, env, "k8s.patch", p("kind", "ConfigMap", "name", "postgres-config", "patch", map[string]any{"data": map[string]any{"readonly": "true"}}))
		cm, err := c.Typed.CoreV1().ConfigMaps(ns).Get(context.Background(), "postgres-config", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["readonly"] != "true" {
			t.Fatalf("data %v", cm.Data)
		}
		// The plan's own form: a JSON string, kind in lower case.
		run(t, env, "k8s.patch", p("kind", "configmap", "name", "postgres-config", "patch", `{"data":{"readonly":"false"}}`))
		cm, _ = c.Typed.CoreV1().ConfigMaps(ns).Get(context.Background(), "postgres-config", metav1.GetOptions{})
		if cm.Data["readonly"] != "false" {
			t.Fatalf("data %v", cm.Data)
		}
	})

	t.Run("ApplyNetworkPolicyFromFile", func(t *testing.T) {
		dir := t.TempDir()
		policy := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: isolate-compromised}
spec:
  podSelector: {matchLabels: {compromised: "true"}}
  policyTypes: [Ingress, Egress]
`
		if err := os.WriteFile(filepath.Join(dir, "network-isolation.yaml"), []byte(policy), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, env, "k8s.apply", p("file", dir))
		np, err := c.Typed.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), "isolate-compromised", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if np.Spec.PodSelector.MatchLabels["compromised"] != "true" || len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Ingress) != 0 {
			t.Fatalf("policy %+v", np.Spec)
		}
		// Applying again is a no-op, not a conflict.
		run(t, env, "k8s.apply", p("file", filepath.Join(dir, "*.yaml")))
	})

	t.Run("RolloutWait", func(t *testing.T) {
		// No controller runs here: play its part and report the rollout
		// done, as the deployment controller would.
		ctx := context.Background()
		errc := make(chan error, 1)
		a, _ := Get("k8s.rollout-wait")
		go func() {
			_, err := a.Run(ctx, env, p("name", "user-svc", "interval", "20ms"))
			errc <- err
		}()
		d, err := c.Typed.AppsV1().Deployments(ns).Get(ctx, "user-svc", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "waiting") {
				return errors.New("rollout-wait did not report waiting")
			}
			return nil
		})
		select {
		case err := <-errc:
			t.Fatalf("rollout-wait returned before the rollout: %v", err)
		default:
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
		if _, err := c.Typed.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("rollout-wait did not see the rollout finish")
		}
	})

	t.Run("CheckHasNoSideEffect", func(t *testing.T) {
		ctx := context.Background()
		for name, params := range map[string]Params{
			"k8s.scale":  p("name", "user-svc", "replicas", 0),
			"k8s.patch":  p("kind", "ConfigMap", "name", "postgres-config", "patch", `{"data":{"readonly":"true"}}`),
			"k8s.apply":  p("manifest", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: dry-run-only}\n"),
			"k8s.delete": p("kind", "deployment", "name", "chat-svc"),
		} {
			a, _ := Get(name)
			if err := a.Check(ctx, env, params); err != nil {
				t.Fatalf("%s check: %v", name, err)
			}
		}
		if replicas(t, c, ns, "user-svc") != 3 || replicas(t, c, ns, "chat-svc") != 2 {
			t.Fatal("check changed replicas")
		}
		cm, _ := c.Typed.CoreV1().ConfigMaps(ns).Get(ctx, "postgres-config", metav1.GetOptions{})
		if cm.Data["readonly"] != "false" {
			t.Fatal("check patched the config map")
		}
		if _, err := c.Typed.CoreV1().ConfigMaps(ns).Get(ctx, "dry-run-only", metav1.GetOptions{}); err == nil {
			t.Fatal("check created an object")
		}
		a, _ := Get("k8s.patch")
		if err := a.Check(ctx, env, p("kind", "ConfigMap", "name", "nope", "patch", `{}`)); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("check of a missing object: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		res := run(t, env, "k8s.delete", p("kind", "Deployment", "names", []any{"chat-svc", "gone"}))
		if d := res["deleted"].([]string); len(d) != 1 || d[0] != "chat-svc" {
			t.Fatalf("deleted %v", d)
		}
		if _, err := c.Typed.AppsV1().Deployments(ns).Get(context.Background(), "chat-svc", metav1.GetOptions{}); err == nil {
			t.Fatal("still there")
		}
		a, _ := Get("k8s.delete")
		if _, err := a.Run(context.Background(), env, p("kind", "Deployment", "name", "gone", "ignore_missing", false)); err == nil {
			t.Fatal("missing object with ignore_missing: false deleted without error")
		}
	})
}

// TestKubeContextSelection: a step's context wins over the kubeconfig's
// current context, and an unknown context names the ones there are.
func TestKubeContextSelection(t *testing.T) {
	ns := testenv.NewNamespace(t)
	cfg, err := clientcmd.LoadFromFile(testenv.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	good := cfg.CurrentContext
	dead := cfg.Contexts[good].DeepCopy()
	dead.Cluster = "dead"
	deadCluster := cfg.Clusters[cfg.Contexts[good].Cluster].DeepCopy()
	deadCluster.Server = "https://127.0.0.1:1"
	cfg.Clusters["dead"] = deadCluster
	cfg.Contexts["primary-us-west-2"] = dead
	cfg.CurrentContext = "primary-us-west-2"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env := &Env{Output: &out}
	ctx := context.Background()
	cm := Params{"kubeconfig": path, "namespace": ns, "manifest": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ctx}\n"}
	a, _ := Get("k8s.apply")
	if err := a.Check(ctx, env, cm); err == nil {
		t.Fatal("the current context points at a dead server, but the check passed")
	}
	cm["context"] = good
	if _, err := a.Run(ctx, env, cm); err != nil {
		t.Fatal(err)
	}
	cm["context"] = "dr-us-east-1"
	_, err = a.Run(ctx, env, cm)
	if !errors.Is(err, kube.ErrNoContext) || !strings.Contains(err.Error(), "primary-us-west-2") {
		t.Fatalf("unknown context: %v", err)
	}
}
