// Package leader makes exactly one replica of `linkdr serve` the one that
// schedules work. Two implementations share one contract: a Kubernetes
// coordination.k8s.io Lease through client-go (inside a cluster), and a
// lease object in the primary repository with expiry and conditional
// writes (anywhere else).
//
// The contract, as in client-go: a leader that cannot renew stops leading
// after RenewDeadline, while the others wait LeaseDuration (longer) after
// its last renewal before taking over, so leaderships never overlap as
// long as clocks agree to within LeaseDuration-RenewDeadline.
package leader

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// Timing of an election.
type Timing struct {
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// Elector campaigns for leadership.
type Elector interface {
	// Run campaigns until ctx is done. Each time this replica becomes
	// leader, lead is called with a context that is cancelled the moment
	// leadership is lost; Run waits for lead to return before it
	// campaigns again, and releases the lease when ctx is done.
	Run(ctx context.Context, lead func(ctx context.Context)) error
	// Observe tells what this replica knows of the leader now.
	Observe() Observation
	// Mode names the implementation: kubernetes, repository or none.
	Mode() string
}

// Observation is what a replica knows of the current leader.
type Observation struct {
	Mode     string    `json:"mode"`
	Identity string    `json:"identity"`         // this replica
	Leader   string    `json:"leader,omitempty"` // "" when unknown
	IsLeader bool      `json:"is_leader"`
	Since    time.Time `json:"since,omitzero"`   // when this replica became leader
	Expires  time.Time `json:"expires,omitzero"` // of the leader's lease, when known
	Error    string    `json:"error,omitempty"`  // why the leader is unknown
	Known    bool      `json:"known"`
}

// Identity names this replica: the pod name in Kubernetes (POD_NAME),
// else the host name, with the process id so two replicas on one host
// differ.
func Identity() string {
	host := os.Getenv("POD_NAME")
	if host == "" {
		host, _ = os.Hostname()
	}
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}

// state is the observation shared between an elector's goroutines.
type state struct {
	mu  sync.Mutex
	obs Observation
}

func (s *state) get() Observation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.obs
}

func (s *state) update(f func(o *Observation)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.obs)
}

// None is the elector of a single replica: it always leads.
type None struct{ st state }

// NewNone returns an elector that leads at once.
func NewNone(identity string) *None {
	n := &None{}
	n.st.obs = Observation{Mode: "none", Identity: identity, Leader: identity, Known: true}
	return n
}

// Run leads until ctx is done.
func (n *None) Run(ctx context.Context, lead func(ctx context.Context)) error {
	n.st.update(func(o *Observation) { o.IsLeader, o.Since = true, time.Now() })
	lead(ctx)
	n.st.update(func(o *Observation) { o.IsLeader = false })
	return nil
}

// Observe reports this replica as the leader.
func (n *None) Observe() Observation { return n.st.get() }

// Mode is "none".
func (n *None) Mode() string { return "none" }

// runLead calls lead in a goroutine and returns a channel closed when it
// returned.
func runLead(ctx context.Context, lead func(ctx context.Context)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		lead(ctx)
	}()
	return done
}
