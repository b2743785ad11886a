package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// Options select a cluster. Zero values mean: $KUBECONFIG or
// ~/.kube/config, its current context, and the context's namespace (else
// "default").
type Options struct {
	Kubeconfig string
	Context    string
	Namespace  string
}

// Clients talk to one cluster as one user.
type Clients struct {
	Config    *rest.Config
	Typed     kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	// Mapper resolves kinds to resources; it reads the server's API
	// groups the first time it is asked.
	Mapper meta.RESTMapper
	// Context and Namespace are the ones in effect after defaults.
	Context   string
	Namespace string
	// Source is the kubeconfig file(s) read, for messages.
	Source string
}

// ErrNoContext: the kubeconfig has no such context.
var ErrNoContext = errors.New("kubeconfig context not found")

// Load reads the kubeconfig and builds clients for the chosen context.
func Load(opts Options) (*Clients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	source := strings.Join(rules.Precedence, string(os.PathListSeparator))
	if opts.Kubeconfig != "" {
		rules.ExplicitPath = opts.Kubeconfig
		source = opts.Kubeconfig
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig %s: %w", source, err)
	}
	ctxName := opts.Context
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	if ctxName == "" {
		return nil, fmt.Errorf("%w: %s has no current context (hint: name one with context:, contexts: %s)", ErrNoContext, source, contextNames(raw.Contexts))
	}
	kctx, ok := raw.Contexts[ctxName]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not in %s (hint: contexts: %s)", ErrNoContext, ctxName, source, contextNames(raw.Contexts))
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: ctxName}
	cc := clientcmd.NewNonInteractiveClientConfig(*raw, ctxName, overrides, rules)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s context %s: %w", source, ctxName, err)
	}
	// Runbooks issue short bursts of requests; the client-side limiter's
	// defaults (5/s) would only add waiting in the middle of a recovery.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "linkdr"
	ns := opts.Namespace
	if ns == "" {
		ns = kctx.Namespace
	}
	if ns == "" {
		ns = "default"
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for context %s: %w", ctxName, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for context %s: %w", ctxName, err)
	}
	disc := memory.NewMemCacheClient(typed.Discovery())
	return &Clients{
		Config: cfg, Typed: typed, Dynamic: dyn, Discovery: disc,
		Mapper:  restmapper.NewDeferredDiscoveryRESTMapper(disc),
		Context: ctxName, Namespace: ns, Source: source,
	}, nil
}

func contextNames[V any](m map[string]V) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Ping asks the API server for its version: it proves the context is
// reachable and the credentials are accepted.
func (c *Clients) Ping(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, err := c.Typed.CoreV1().RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", fmt.Errorf("kubernetes context %s (%s): %w", c.Context, c.Config.Host, err)
	}
	return strings.TrimSpace(string(body)), nil
}

// Resource resolves a kind ("Deployment", "deployment", "configmaps",
// "NetworkPolicy") and an optional apiVersion ("apps/v1") to the resource
// to call, and whether it lives in a namespace.
func (c *Clients) Resource(kind, apiVersion string) (schema.GroupVersionResource, bool, error) {
	var gvk schema.GroupVersionKind
	if apiVersion != "" {
		gv, err := schema.ParseGroupVersion(apiVersion)
		if err != nil {
			return schema.GroupVersionResource{}, false, fmt.Errorf("apiVersion %q: %w", apiVersion, err)
		}
		gvk = gv.WithKind(kind)
	}
	var m *meta.RESTMapping
	var err error
	if apiVersion != "" {
		m, err = c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			// A lower-case or plural kind: resolve it as a resource name.
			m, err = c.mapResource(schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(kind)})
		}
	} else {
		m, err = c.mapResource(schema.GroupVersionResource{Resource: strings.ToLower(kind)})
	}
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("unknown kind %q in context %s: %w", kind, c.Context, err)
	}
	return m.Resource, m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// mapResource accepts a kind, a singular or a plural resource name.
func (c *Clients) mapResource(partial schema.GroupVersionResource) (*meta.RESTMapping, error) {
	gvk, err := c.Mapper.KindFor(partial)
	if err != nil {
		return nil, err
	}
	return c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}

// InCluster reports whether this process runs in a Kubernetes pod with a
// service account.
func InCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// Config loads the client configuration: the kubeconfig file (or
// $KUBECONFIG, or ~/.kube/config) with an optional context name, or the
// pod's service account when no kubeconfig is named and the process runs
// in a cluster. The daemon and checks use it; runbook steps use Load,
// which also resolves kinds.
func Config(kubeconfig, context string) (*rest.Config, error) {
	if kubeconfig == "" && os.Getenv("KUBECONFIG") == "" && InCluster() {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster Kubernetes config: %w", err)
		}
		return c, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	c, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w (hint: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account)", err)
	}
	return c, nil
}

// Namespace is the namespace of the running pod: POD_NAMESPACE, else the
// service account's namespace file, else "".
func Namespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return string(b)
	}
	return ""
}

// Client builds a clientset; see Config.
func Client(kubeconfig, context string) (kubernetes.Interface, error) {
	cfg, err := Config(kubeconfig, context)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}
