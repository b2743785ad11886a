package check

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/plan"
)

// Zone labels of nodes, current and deprecated.
var zoneLabels = []string{"topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"}

// probeKubernetes reads a Deployment's replica counts and where its pods
// run: pods are those matching the Deployment's selector, zones the
// distinct zone labels of the nodes they are scheduled on.
func probeKubernetes(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	cs, err := kube.Client(r.Plan.Resolve(c.Kubeconfig), c.Context)
	if err != nil {
		return nil, err
	}
	d, err := cs.AppsV1().Deployments(c.Namespace).Get(ctx, c.Deployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s: %w", c.Namespace, c.Deployment, err)
	}
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = int(*d.Spec.Replicas)
	}
	vars := map[string]any{
		"replicas": replicas, "ready_replicas": int(d.Status.ReadyReplicas),
		"available_replicas": int(d.Status.AvailableReplicas), "updated_replicas": int(d.Status.UpdatedReplicas),
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s selector: %w", c.Namespace, c.Deployment, err)
	}
	pods, err := cs.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("pods of %s/%s: %w", c.Namespace, c.Deployment, err)
	}
	vars["pods"] = len(pods.Items)
	zones := map[string]bool{}
	nodeZone := map[string]string{}
	for _, p := range pods.Items {
		n := p.Spec.NodeName
		if n == "" || p.DeletionTimestamp != nil {
			continue
		}
		z, seen := nodeZone[n]
		if !seen {
			node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("node %s of pod %s: %w", n, p.Name, err)
			}
			for _, l := range zoneLabels {
				if v := node.Labels[l]; v != "" && z == "" {
					z = v
				}
			}
			nodeZone[n] = z
		}
		if z != "" {
			zones[z] = true
		}
	}
	vars["zones"] = len(zones)
	return vars, nil
}
