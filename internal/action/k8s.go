package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"

	"github.com/linkapp/linkdr/internal/kube"
)

func init() {
	register("k8s.scale", k8sScale{})
	register("k8s.patch", k8sPatch{})
	register("k8s.apply", k8sApply{})
	register("k8s.rollout-wait", k8sRolloutWait{})
	register("k8s.delete", k8sDelete{})
}

// DefaultFieldManager owns the fields linkdr applies server-side.
const DefaultFieldManager = "linkdr"

// clients loads the cluster a step names, falling back to the plan's
// kubernetes: section.
func clients(env *Env, p Params) (*kube.Clients, error) {
	o := kube.Options{
		Kubeconfig: p.String("kubeconfig", ""),
		Context:    p.String("context", ""),
		Namespace:  p.String("namespace", ""),
	}
	if env.Plan != nil {
		k := env.Plan.Kubernetes
		if o.Kubeconfig == "" {
			o.Kubeconfig = k.Kubeconfig
		}
		if o.Context == "" {
			o.Context = k.Context
		}
		if o.Namespace == "" {
			o.Namespace = k.Namespace
		}
		o.Kubeconfig = env.Plan.Resolve(o.Kubeconfig)
	}
	return kube.Load(o)
}

// ping is the shared precondition: the context exists and answers.
func ping(ctx context.Context, env *Env, c *kube.Clients) error {
	v, err := c.Ping(ctx)
	if err != nil {
		return err
	}
	var info struct {
		GitVersion string `json:"gitVersion"`
	}
	_ = json.Unmarshal([]byte(v), &info)
	env.printf("context %s (%s): Kubernetes %s, namespace %s", c.Context, c.Config.Host, info.GitVersion, c.Namespace)
	return nil
}

// targets resolves name, names or selector to object names of a resource.
// In a dry run, planned supplies objects earlier steps would create.
func targets(ctx context.Context, c *kube.Clients, gvr schema.GroupVersionResource, ns string, p Params, planned *Planned) ([]string, error) {
	names := p.Strings("names")
	if n := p.String("name", ""); n != "" {
		names = append([]string{n}, names...)
	}
	if sel := p.String("selector", ""); sel != "" {
		list, err := c.Dynamic.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("list %s with selector %q in %s: %w", gvr.Resource, sel, ns, err)
		}
		for _, it := range list.Items {
			names = append(names, it.GetName())
		}
		if len(names) == 0 && planned != nil {
			sl, err := labels.Parse(sel)
			if err != nil {
				return nil, fmt.Errorf("selector %q: %w", sel, err)
			}
			for _, o := range planned.Find(c.Context, ns, gvr.Resource, func(o PlannedObject) bool { return sl.Matches(labels.Set(o.Labels)) }) {
				names = append(names, o.Name)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no %s match selector %q in namespace %s", gvr.Resource, sel, ns)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("name, names or selector is required")
	}
	return names, nil
}

// willExist reports a missing object that an earlier dry-run step would
// create, and says so.
func willExist(env *Env, c *kube.Clients, resource, name string, err error) bool {
	if !apierrors.IsNotFound(err) {
		return false
	}
	found := env.Planned.Find(c.Context, c.Namespace, resource, func(o PlannedObject) bool { return o.Name == name })
	if len(found) == 0 {
		return false
	}
	env.printf("%s %s/%s does not exist yet; an earlier step creates it", resource, c.Namespace, name)
	return true
}

func scalableKind(p Params) (string, schema.GroupVersionResource, error) {
	kind := strings.ToLower(p.String("kind", "deployment"))
	switch kind {
	case "deployment", "deployments":
		return "deployment", appsv1.SchemeGroupVersion.WithResource("deployments"), nil
	case "statefulset", "statefulsets":
		return "statefulset", appsv1.SchemeGroupVersion.WithResource("statefulsets"), nil
	case "replicaset", "replicasets":
		return "replicaset", appsv1.SchemeGroupVersion.WithResource("replicasets"), nil
	}
	return "", schema.GroupVersionResource{}, fmt.Errorf("parameter kind: %q cannot be scaled (deployment, statefulset, replicaset)", kind)
}

type scaler interface {
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

func scalerFor(c *kube.Clients, kind, ns string) scaler {
	switch kind {
	case "statefulset":
		return c.Typed.AppsV1().StatefulSets(ns)
	case "replicaset":
		return c.Typed.AppsV1().ReplicaSets(ns)
	default:
		return c.Typed.AppsV1().Deployments(ns)
	}
}

// k8sScale sets the replicas of Deployments, StatefulSets or ReplicaSets
// through the scale subresource, as kubectl scale does.
type k8sScale struct{}

func (k8sScale) Check(ctx context.Context, env *Env, p Params) error {
	kind, gvr, err := scalableKind(p)
	if err != nil {
		return err
	}
	if _, err := p.Int("replicas", 0); err != nil {
		return err
	}
	c, err := clients(env, p)
	if err != nil {
		return err
	}
	if err := ping(ctx, env, c); err != nil {
		return err
	}
	names, err := targets(ctx, c, gvr, c.Namespace, p, env.Planned)
	if err != nil {
		return err
	}
	for _, n := range names {
		s, err := scalerFor(c, kind, c.Namespace).GetScale(ctx, n, metav1.GetOptions{})
		if willExist(env, c, gvr.Resource, n, err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", kind, c.Namespace, n, err)
		}
		env.printf("%s %s/%s has %d replicas", kind, c.Namespace, n, s.Spec.Replicas)
	}
	return nil
}

func (k8sScale) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	kind, gvr, err := scalableKind(p)
	if err != nil {
		return nil, err
	}
	replicas, err := p.Int("replicas", 0)
	if err != nil {
		return nil, err
	}
	if replicas < 0 {
		return nil, fmt.Errorf("parameter replicas: must not be negative, got %d", replicas)
	}
	c, err := clients(env, p)
	if err != nil {
		return nil, err
	}
	names, err := targets(ctx, c, gvr, c.Namespace, p, env.Planned)
	if err != nil {
		return nil, err
	}
	previous := map[string]any{}
	sc := scalerFor(c, kind, c.Namespace)
	for _, n := range names {
		// Controllers write the object's status all the time: a conflict
		// on the resource version means read again and retry.
		err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			s, err := sc.GetScale(ctx, n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			previous[n] = int(s.Spec.Replicas)
			s.Spec.Replicas = int32(replicas)
			_, err = sc.UpdateScale(ctx, n, s, metav1.UpdateOptions{FieldManager: DefaultFieldManager})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("scale %s %s/%s to %d: %w", kind, c.Namespace, n, replicas, err)
		}
		env.printf("scaled %s %s/%s from %d to %d replicas (context %s)", kind, c.Namespace, n, previous[n], replicas, c.Context)
	}
	return Result{"context": c.Context, "namespace": c.Namespace, "kind": kind, "replicas": replicas, "previous": previous}, nil
}

// k8sPatch patches one object (merge, strategic-merge or JSON patch), e.g.
// the read-only switch in a ConfigMap.
type k8sPatch struct{}

func patchType(p Params) (types.PatchType, error) {
	switch t := strings.ToLower(p.String("type", "merge")); t {
	case "merge":
		return types.MergePatchType, nil
	case "strategic":
		return types.StrategicMergePatchType, nil
	case "json":
		return types.JSONPatchType, nil
	default:
		return "", fmt.Errorf("parameter type: %q is not merge, strategic or json", t)
	}
}

// patchBytes turns the patch parameter (a mapping or list from YAML, or a
// JSON/YAML string) into JSON.
func patchBytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		b, err := k8syaml.ToJSON([]byte(x))
		if err != nil {
			return nil, fmt.Errorf("parameter patch: %w", err)
		}
		return b, nil
	case nil:
		return nil, errors.New("parameter patch is required")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("parameter patch: %w", err)
		}
		return b, nil
	}
}

func resourceClient(c *kube.Clients, gvr schema.GroupVersionResource, namespaced bool, ns string) dynamic.ResourceInterface {
	if namespaced {
		return c.Dynamic.Resource(gvr).Namespace(ns)
	}
	return c.Dynamic.Resource(gvr)
}

func (k8sPatch) prepare(env *Env, p Params) (*kube.Clients, dynamic.ResourceInterface, string, types.PatchType, []byte, error) {
	pt, err := patchType(p)
	if err != nil {
		return nil, nil, "", "", nil, err
	}
	body, err := patchBytes(p["patch"])
	if err != nil {
		return nil, nil, "", "", nil, err
	}
	name, err := p.Required("name")
	if err != nil {
		return nil, nil, "", "", nil, err
	}
	kind, err := p.Required("kind")
	if err != nil {
		return nil, nil, "", "", nil, err
	}
	c, err := clients(env, p)
	if err != nil {
		return nil, nil, "", "", nil, err
	}
	gvr, namespaced, err := c.Resource(kind, p.String("api_version", ""))
	if err != nil {
		return nil, nil, "", "", nil, err
	}
	return c, resourceClient(c, gvr, namespaced, c.Namespace), name, pt, body, nil
}

func (k k8sPatch) Check(ctx context.Context, env *Env, p Params) error {
	c, rc, name, pt, body, err := k.prepare(env, p)
	if err != nil {
		return err
	}
	if err := ping(ctx, env, c); err != nil {
		return err
	}
	// The server applies the patch to the live object and discards it:
	// the precondition is the real one, without the side effect.
	if _, err := rc.Patch(ctx, name, pt, body, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: DefaultFieldManager}); err != nil {
		return fmt.Errorf("patch %s %s (server dry run): %w", p.String("kind", ""), name, err)
	}
	return nil
}

func (k k8sPatch) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	c, rc, name, pt, body, err := k.prepare(env, p)
	if err != nil {
		return nil, err
	}
	obj, err := rc.Patch(ctx, name, pt, body, metav1.PatchOptions{FieldManager: DefaultFieldManager})
	if err != nil {
		return nil, fmt.Errorf("patch %s %s in %s: %w", p.String("kind", ""), name, c.Namespace, err)
	}
	env.printf("patched %s %s/%s (%s patch %s)", obj.GetKind(), c.Namespace, name, p.String("type", "merge"), body)
	return Result{"context": c.Context, "namespace": c.Namespace, "kind": obj.GetKind(), "name": name, "resource_version": obj.GetResourceVersion()}, nil
}

// k8sApply applies manifests with server-side apply, as
// `kubectl apply --server-side` does.
type k8sApply struct{}

// manifests reads the objects of a step: inline YAML (one or more
// documents, or a mapping), or files and directories relative to the plan.
func manifests(env *Env, p Params) ([]*unstructured.Unstructured, error) {
	var docs [][]byte
	var sources []string
	switch m := p["manifest"].(type) {
	case nil:
	case string:
		docs, sources = append(docs, []byte(m)), append(sources, "manifest")
	default:
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("parameter manifest: %w", err)
		}
		docs, sources = append(docs, b), append(sources, "manifest")
	}
	files := p.Strings("files")
	if f := p.String("file", ""); f != "" {
		files = append([]string{f}, files...)
	}
	for _, f := range files {
		if env.Plan != nil {
			f = env.Plan.Resolve(f)
		}
		paths, err := manifestFiles(f)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read manifest: %w", err)
			}
			docs, sources = append(docs, b), append(sources, path)
		}
	}
	var out []*unstructured.Unstructured
	for i, d := range docs {
		dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(d), 4096)
		for n := 1; ; n++ {
			var obj map[string]any
			if err := dec.Decode(&obj); err == io.EOF {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", sources[i], n, err)
			}
			if len(obj) == 0 {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			if u.IsList() {
				list, err := u.ToList()
				if err != nil {
					return nil, fmt.Errorf("%s: document %d: %w", sources[i], n, err)
				}
				for j := range list.Items {
					out = append(out, &list.Items[j])
				}
				continue
			}
			if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
				return nil, fmt.Errorf("%s: document %d: apiVersion, kind and metadata.name are required", sources[i], n)
			}
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no objects in manifest, file or files")
	}
	return out, nil
}

// manifestFiles expands a file, a directory (its *.yaml, *.yml, *.json in
// name order) or a glob.
func manifestFiles(path string) ([]string, error) {
	if strings.ContainsAny(path, "*?[") {
		m, err := filepath.Glob(path)
		if err != nil || len(m) == 0 {
			return nil, fmt.Errorf("manifest files %s: nothing matches", path)
		}
		sort.Strings(m)
		return m, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	var out []string
	for _, e := range ents {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("manifest directory %s has no .yaml, .yml or .json files", path)
	}
	return out, nil
}

func (k8sApply) apply(ctx context.Context, env *Env, p Params, dryRun bool) (Result, error) {
	objs, err := manifests(env, p)
	if err != nil {
		return nil, err
	}
	force, err := p.Bool("force", false)
	if err != nil {
		return nil, err
	}
	c, err := clients(env, p)
	if err != nil {
		return nil, err
	}
	if dryRun {
		if err := ping(ctx, env, c); err != nil {
			return nil, err
		}
	}
	opts := metav1.ApplyOptions{FieldManager: p.String("field_manager", DefaultFieldManager), Force: force}
	verb := "applied"
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
		verb = "would apply"
	}
	var applied []string
	for _, u := range objs {
		gv, err := schema.ParseGroupVersion(u.GetAPIVersion())
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		gvr, namespaced, err := c.Resource(u.GetKind(), gv.String())
		if err != nil {
			return nil, err
		}
		ns := u.GetNamespace()
		if namespaced && ns == "" {
			ns = c.Namespace
			u.SetNamespace(ns)
		}
		got, err := resourceClient(c, gvr, namespaced, ns).Apply(ctx, u.GetName(), u, opts)
		if err != nil {
			return nil, fmt.Errorf("apply %s %s: %w", u.GetKind(), qualified(ns, u.GetName()), err)
		}
		ref := strings.ToLower(u.GetKind()) + "/" + qualified(ns, u.GetName())
		applied = append(applied, ref)
		if dryRun {
			env.Planned.Add(PlannedObject{Context: c.Context, Namespace: ns, Resource: gvr.Resource, Name: u.GetName(), Labels: u.GetLabels()})
			env.printf("%s %s", verb, ref)
		} else {
			env.printf("%s %s (resourceVersion %s)", verb, ref, got.GetResourceVersion())
		}
	}
	return Result{"context": c.Context, "applied": applied}, nil
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// Check applies with the server's dry run: schema, admission and
// conflicts are checked, nothing is stored.
func (k k8sApply) Check(ctx context.Context, env *Env, p Params) error {
	_, err := k.apply(ctx, env, p, true)
	return err
}

func (k k8sApply) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	return k.apply(ctx, env, p, false)
}

// k8sRolloutWait waits until Deployments, StatefulSets or ReplicaSets have
// all their replicas updated and available, with kubectl rollout status's
// rules.
type k8sRolloutWait struct{}

func (k8sRolloutWait) Check(ctx context.Context, env *Env, p Params) error {
	_, gvr, err := scalableKind(p)
	if err != nil {
		return err
	}
	c, err := clients(env, p)
	if err != nil {
		return err
	}
	if err := ping(ctx, env, c); err != nil {
		return err
	}
	names, err := targets(ctx, c, gvr, c.Namespace, p, env.Planned)
	if err != nil {
		return err
	}
	for _, n := range names {
		_, err := c.Dynamic.Resource(gvr).Namespace(c.Namespace).Get(ctx, n, metav1.GetOptions{})
		if err != nil && !willExist(env, c, gvr.Resource, n, err) {
			return fmt.Errorf("%s %s/%s: %w", gvr.Resource, c.Namespace, n, err)
		}
	}
	return nil
}

func (k8sRolloutWait) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	kind, gvr, err := scalableKind(p)
	if err != nil {
		return nil, err
	}
	interval, err := p.Duration("interval", 2*time.Second)
	if err != nil {
		return nil, err
	}
	c, err := clients(env, p)
	if err != nil {
		return nil, err
	}
	names, err := targets(ctx, c, gvr, c.Namespace, p, env.Planned)
	if err != nil {
		return nil, err
	}
	ready := map[string]any{}
	for _, n := range names {
		err := poll(ctx, env, interval, func() error {
			msg, done, err := rolloutStatus(ctx, c, kind, n)
			if err != nil {
				return err
			}
			if !done {
				return errors.New(msg)
			}
			ready[n] = msg
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("rollout of %s %s/%s: %w", kind, c.Namespace, n, err)
		}
		env.printf("%s %s/%s: %s", kind, c.Namespace, n, ready[n])
	}
	return Result{"context": c.Context, "namespace": c.Namespace, "kind": kind, "ready": ready}, nil
}

// errRolloutFailed: the rollout cannot finish by waiting.
var errRolloutFailed = errors.New("rollout failed")

func rolloutStatus(ctx context.Context, c *kube.Clients, kind, name string) (string, bool, error) {
	apps := c.Typed.AppsV1()
	switch kind {
	case "deployment":
		d, err := apps.Deployments(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", false, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		switch {
		case d.Generation > s.ObservedGeneration:
			return "waiting for the deployment spec update to be observed", false, nil
		case progressDeadlineExceeded(d):
			return "", false, fmt.Errorf("%w: deployment %q exceeded its progress deadline", errRolloutFailed, name)
		case s.UpdatedReplicas < want:
			return fmt.Sprintf("%d out of %d new replicas have been updated", s.UpdatedReplicas, want), false, nil
		case s.Replicas > s.UpdatedReplicas:
			return fmt.Sprintf("%d old replicas are pending termination", s.Replicas-s.UpdatedReplicas), false, nil
		case s.AvailableReplicas < s.UpdatedReplicas:
			return fmt.Sprintf("%d of %d updated replicas are available", s.AvailableReplicas, s.UpdatedReplicas), false, nil
		}
		return fmt.Sprintf("successfully rolled out (%d replicas available)", s.AvailableReplicas), true, nil
	case "statefulset":
		st, err := apps.StatefulSets(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", false, err
		}
		want := int32(1)
		if st.Spec.Replicas != nil {
			want = *st.Spec.Replicas
		}
		s := st.Status
		switch {
		case st.Generation > s.ObservedGeneration:
			return "waiting for the statefulset spec update to be observed", false, nil
		case s.ReadyReplicas < want:
			return fmt.Sprintf("%d of %d replicas are ready", s.ReadyReplicas, want), false, nil
		case st.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType && s.UpdateRevision != s.CurrentRevision && s.UpdatedReplicas < want:
			return fmt.Sprintf("%d of %d replicas are updated", s.UpdatedReplicas, want), false, nil
		}
		return fmt.Sprintf("successfully rolled out (%d replicas ready)", s.ReadyReplicas), true, nil
	default:
		rs, err := apps.ReplicaSets(c.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", false, err
		}
		want := int32(1)
		if rs.Spec.Replicas != nil {
			want = *rs.Spec.Replicas
		}
		if rs.Status.ReadyReplicas < want {
			return fmt.Sprintf("%d of %d replicas are ready", rs.Status.ReadyReplicas, want), false, nil
		}
		return fmt.Sprintf("%d replicas ready", rs.Status.ReadyReplicas), true, nil
	}
}

func progressDeadlineExceeded(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return true
		}
	}
	return false
}

// k8sDelete deletes objects (isolating a compromised pod, removing a
// test namespace).
type k8sDelete struct{}

func (k8sDelete) resolve(ctx context.Context, env *Env, p Params) (*kube.Clients, dynamic.ResourceInterface, []string, error) {
	kind, err := p.Required("kind")
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := clients(env, p)
	if err != nil {
		return nil, nil, nil, err
	}
	gvr, namespaced, err := c.Resource(kind, p.String("api_version", ""))
	if err != nil {
		return nil, nil, nil, err
	}
	names, err := targets(ctx, c, gvr, c.Namespace, p, env.Planned)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, resourceClient(c, gvr, namespaced, c.Namespace), names, nil
}

func (k k8sDelete) Check(ctx context.Context, env *Env, p Params) error {
	c, rc, names, err := k.resolve(ctx, env, p)
	if err != nil {
		return err
	}
	if err := ping(ctx, env, c); err != nil {
		return err
	}
	ignore, err := p.Bool("ignore_missing", true)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := rc.Delete(ctx, n, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			if apierrors.IsNotFound(err) && ignore {
				env.printf("%s %s is already gone", p.String("kind", ""), n)
				continue
			}
			return fmt.Errorf("delete %s %s (server dry run): %w", p.String("kind", ""), n, err)
		}
	}
	return nil
}

func (k k8sDelete) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	c, rc, names, err := k.resolve(ctx, env, p)
	if err != nil {
		return nil, err
	}
	force, err := p.Bool("force", false)
	if err != nil {
		return nil, err
	}
	ignore, err := p.Bool("ignore_missing", true)
	if err != nil {
		return nil, err
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	if force {
		zero := int64(0)
		opts.GracePeriodSeconds = &zero
	}
	var deleted, missing []string
	for _, n := range names {
		err := rc.Delete(ctx, n, opts)
		switch {
		case apierrors.IsNotFound(err) && ignore:
			missing = append(missing, n)
			env.printf("%s %s was already gone", p.String("kind", ""), n)
		case err != nil:
			return nil, fmt.Errorf("delete %s %s in %s: %w", p.String("kind", ""), n, c.Namespace, err)
		default:
			deleted = append(deleted, n)
			env.printf("deleted %s %s/%s", strings.ToLower(p.String("kind", "")), c.Namespace, n)
		}
	}
	return Result{"context": c.Context, "namespace": c.Namespace, "deleted": deleted, "missing": missing}, nil
}
