package leader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Kubernetes elects through a coordination.k8s.io Lease with client-go's
// leader election.
type Kubernetes struct {
	client    kubernetes.Interface
	namespace string
	name      string
	timing    Timing
	log       *slog.Logger
	st        state
}

// NewKubernetes returns an elector on the Lease namespace/name.
func NewKubernetes(cfg *rest.Config, namespace, name, identity string, timing Timing, log *slog.Logger) (*Kubernetes, error) {
	if namespace == "" {
		return nil, fmt.Errorf("leader election: no namespace for the Lease (hint: set serve.leader_election.namespace, or POD_NAMESPACE)")
	}
	c := rest.CopyConfig(cfg)
	c.UserAgent = "linkdr"
	// A Lease request must finish well within the renew deadline, and the
	// client's rate limit must allow a read and a write every retry.
	c.Timeout = max(timing.RetryPeriod, timing.RenewDeadline/2)
	c.QPS = max(5, float32(4/timing.RetryPeriod.Seconds()))
	c.Burst = int(2 * c.QPS)
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	k := &Kubernetes{client: cs, namespace: namespace, name: name, timing: timing, log: log}
	k.st.obs = Observation{Mode: "kubernetes", Identity: identity}
	return k, nil
}

// Mode is "kubernetes".
func (k *Kubernetes) Mode() string { return "kubernetes" }

// Observe returns what this replica last saw.
func (k *Kubernetes) Observe() Observation { return k.st.get() }

// Run campaigns until ctx is done; client-go returns after each lost
// leadership, so it is started again.
func (k *Kubernetes) Run(ctx context.Context, lead func(ctx context.Context)) error {
	id := k.st.get().Identity
	for ctx.Err() == nil {
		// client-go calls OnStartedLeading in a goroutine it does not wait
		// for; lead runs here instead, so it has returned before the next
		// campaign (and before Run returns).
		started := make(chan context.Context, 1)
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: k.namespace, Name: k.name},
			Client:     k.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			Name:            k.name,
			LeaseDuration:   k.timing.LeaseDuration,
			RenewDeadline:   k.timing.RenewDeadline,
			RetryPeriod:     k.timing.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leadCtx context.Context) { started <- leadCtx },
				OnStoppedLeading: func() {
					k.st.update(func(o *Observation) { o.IsLeader = false })
				},
				OnNewLeader: func(identity string) {
					k.st.update(func(o *Observation) { o.Leader, o.Known, o.Error = identity, identity != "", "" })
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			le.Run(ctx)
		}()
		select {
		case leadCtx := <-started:
			k.log.Info("became leader", "mode", "kubernetes", "lease", k.namespace+"/"+k.name)
			k.st.update(func(o *Observation) {
				o.IsLeader, o.Leader, o.Known, o.Since, o.Error = true, id, true, time.Now(), ""
			})
			lead(leadCtx)
			k.st.update(func(o *Observation) { o.IsLeader = false })
			<-ran
			if ctx.Err() == nil {
				k.log.Warn("lost leadership", "mode", "kubernetes", "lease", k.namespace+"/"+k.name)
			}
		case <-ran:
		}
	}
	return nil
}
