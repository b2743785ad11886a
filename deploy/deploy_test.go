// Package deploy holds no code: its tests prove the shipped Kubernetes
// manifests and Prometheus rules against the real API server and the real
// promtool.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/leader"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/testenv"
)

func TestRules(t *testing.T) {
	promtool := testenv.Bin(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "prometheus/linkdr-rules.yaml"},
		{"test", "rules", "prometheus/linkdr-rules.test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
		t.Logf("promtool %v:\n%s", args, out)
	}
}

// TestPrometheusRuleMatches: the PrometheusRule carries exactly the rules
// of linkdr-rules.yaml.
func TestPrometheusRuleMatches(t *testing.T) {
	var plain struct {
		Groups []any `yaml:"groups"`
	}
	var pr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	for file, v := range map[string]any{"prometheus/linkdr-rules.yaml": &plain, "prometheus/linkdr-prometheusrule.yaml": &pr} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if pr.Kind != "PrometheusRule" || pr.APIVersion != "monitoring.coreos.com/v1" {
		t.Fatalf("kind %s %s", pr.APIVersion, pr.Kind)
	}
	if len(plain.Groups) == 0 || !reflect.DeepEqual(plain.Groups, pr.Spec.Groups) {
		t.Fatal("linkdr-prometheusrule.yaml and linkdr-rules.yaml hold different rules")
	}
}

func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func clients(t *testing.T) (*rest.Config, dynamic.Interface, meta.RESTMapper) {
	cfg, err := kube.Config(testenv.Kubeconfig(t), "")
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dyn, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
}

// apply server-side-applies objects into ns; dryRun leaves nothing behind.
// Unknown or misplaced fields are errors (fieldValidation=Strict).
func apply(t *testing.T, dyn dynamic.Interface, mapper meta.RESTMapper, ns string, objs []*unstructured.Unstructured, dryRun bool) {
	t.Helper()
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: not served by Kubernetes 1.34: %v", gvk, o.GetName(), err)
		}
		o.SetNamespace(ns)
		if subjects, ok, _ := unstructured.NestedSlice(o.Object, "subjects"); ok {
			// kustomize put the service account in namespace linkdr.
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = ns
			}
			unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		}
		b, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		opts := metav1.PatchOptions{FieldManager: "linkdr-test", FieldValidation: "Strict", Force: ptr(true)}
		if dryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		_, err = dyn.Resource(m.Resource).Namespace(ns).Patch(context.Background(), o.GetName(), types.ApplyPatchType, b, opts)
		if err != nil {
			t.Errorf("apply %s %s: %v", gvk.Kind, o.GetName(), err)
			continue
		}
		t.Logf("%s %s/%s accepted (dry run %v)", gvk.Kind, ns, o.GetName(), dryRun)
	}
}

func ptr[T any](v T) *T { return &v }

// TestManifests builds both kustomizations and applies every object to
// the real API server (v1.34) with a server-side dry run and strict field
// validation; the plan in the ConfigMap must be valid.
func TestManifests(t *testing.T) {
	_, dyn, mapper := clients(t)
	ns := testenv.NewNamespace(t)
	for dir, want := range map[string][]string{
		"kubernetes":         {"ServiceAccount", "ConfigMap", "Role", "Role", "RoleBinding", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"},
		"kubernetes/cronjob": {"ServiceAccount", "ConfigMap", "CronJob"},
	} {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
				if o.GetNamespace() != "linkdr" {
					t.Errorf("%s %s in namespace %q, want linkdr", o.GetKind(), o.GetName(), o.GetNamespace())
				}
				if o.GetKind() == "ConfigMap" {
					data, _, _ := unstructured.NestedString(o.Object, "data", "linkdr.yaml")
					checkPlan(t, data)
				}
			}
			for _, k := range want {
				if kinds[k] == 0 {
					t.Errorf("no %s in %s", k, dir)
				}
				kinds[k]--
			}
			apply(t, dyn, mapper, ns, objs, true)
		})
	}
}

func checkPlan(t *testing.T, data string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "linkdr.yaml")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	p, warns, err := plan.Load(path)
	if err != nil {
		t.Fatalf("the plan in the ConfigMap is invalid: %v", err)
	}
	for _, w := range warns {
		t.Logf("plan warning (expected outside a pod): %s", w)
	}
	if p.Serve.LeaderElection.Mode != plan.ElectKubernetes || p.Repositories["dr"].CopyFrom != "primary" {
		t.Fatalf("plan: %+v", p.Serve)
	}
}

// TestLeaderElectionRBAC applies the ServiceAccount and its Role for real
// and runs the leader election as that service account (impersonated):
// the Role is enough to lead, and no more than that is allowed.
func TestLeaderElectionRBAC(t *testing.T) {
	cfg, dyn, mapper := clients(t)
	ns := testenv.NewNamespace(t)
	var rbac []*unstructured.Unstructured
	for _, o := range build(t, "kubernetes") {
		switch o.GetKind() {
		case "ServiceAccount", "RoleBinding":
			rbac = append(rbac, o)
		case "Role":
			if o.GetName() == "linkdr-leader-election" {
				rbac = append(rbac, o)
			}
		}
	}
	apply(t, dyn, mapper, ns, rbac, false)
	sa := rest.CopyConfig(cfg)
	sa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":linkdr"}

	cs, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the service account may list pods (%v): not least privilege", err)
	}
	if _, err := cs.CoordinationV1().Leases(ns).Get(context.Background(), "other", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("the service account may read other Leases (%v)", err)
	}

	el, err := leader.NewKubernetes(sa, ns, "linkdr", "rbac-test", leader.Timing{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var led atomic.Bool
	done := make(chan error)
	go func() { done <- el.Run(ctx, func(ctx context.Context) { led.Store(true); <-ctx.Done() }) }()
	testenv.WaitFor(t, 15*time.Second, func() error {
		if !led.Load() {
			return fmt.Errorf("not leading: %+v", el.Observe())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	l, err := kubernetes.NewForConfigOrDie(cfg).CoordinationV1().Leases(ns).Get(context.Background(), "linkdr", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		t.Fatalf("lease after release: %v %+v", err, l)
	}
}
