package leader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/linkapp/linkdr/internal/kube"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/testenv"
)

var fast = Timing{LeaseDuration: 1500 * time.Millisecond, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}

// leaders records who leads when, and fails the test the moment two
// replicas lead at once.
type leaders struct {
	t       *testing.T
	mu      sync.Mutex
	current string
	history []string
}

func (l *leaders) lead(name string) func(ctx context.Context) {
	return func(ctx context.Context) {
		l.mu.Lock()
		if l.current != "" {
			l.t.Errorf("%s leads while %s still does", name, l.current)
		}
		l.current = name
		l.history = append(l.history, name)
		l.mu.Unlock()
		<-ctx.Done()
		l.mu.Lock()
		l.current = ""
		l.mu.Unlock()
	}
}

func (l *leaders) now() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current, len(l.history)
}

// partition cuts a replica off the repository on demand.
type partition struct {
	Terms
	cut atomic.Bool
}

var errCut = errors.New("network partition")

func (p *partition) CurrentTerm(ctx context.Context) (*repo.LeaderTerm, error) {
	if p.cut.Load() {
		return nil, errCut
	}
	return p.Terms.CurrentTerm(ctx)
}

func (p *partition) ClaimTerm(ctx context.Context, t repo.LeaderTerm) error {
	if p.cut.Load() {
		return errCut
	}
	return p.Terms.ClaimTerm(ctx, t)
}

func (p *partition) RenewTerm(ctx context.Context, t repo.LeaderTerm) error {
	if p.cut.Load() {
		return errCut
	}
	return p.Terms.RenewTerm(ctx, t)
}

type replica struct {
	name   string
	el     Elector
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, name string, el Elector, l *leaders) *replica {
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, el: el, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := el.Run(ctx, l.lead(name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func waitLeader(t *testing.T, l *leaders, timeout time.Duration, not string) string {
	t.Helper()
	var who string
	testenv.WaitFor(t, timeout, func() error {
		who, _ = l.now()
		if who == "" || who == not {
			return fmt.Errorf("leader %q", who)
		}
		return nil
	})
	return who
}

func openRepo(t *testing.T, url string) *repo.Repo {
	r, _, err := repo.Init(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// electionSuite: one of two replicas leads; the other observes it; a
// leader that steps down hands over at once; a leader cut off stops
// leading before the other takes over, within the lease duration.
func electionSuite(t *testing.T, fast Timing, newElector func(t *testing.T, name string) (Elector, *atomic.Bool)) {
	l := &leaders{t: t}
	ea, pa := newElector(t, "a")
	eb, pb := newElector(t, "b")
	a := start(t, "a", ea, l)
	b := start(t, "b", eb, l)
	first := waitLeader(t, l, 10*time.Second, "")
	byName := map[string]*replica{"a": a, "b": b}
	parts := map[string]*atomic.Bool{"a": pa, "b": pb}
	other := map[string]string{"a": "b", "b": "a"}[first]
	testenv.WaitFor(t, 5*time.Second, func() error {
		if o := byName[other].el.Observe(); !o.Known || o.IsLeader || o.Leader != byName[first].el.Observe().Identity {
			return fmt.Errorf("%s observes %+v", other, o)
		}
		return nil
	})
	if o := byName[first].el.Observe(); !o.IsLeader || !o.Known {
		t.Fatalf("leader observes %+v", o)
	}

	parent := t
	t.Run("StepDown", func(t *testing.T) {
		began := time.Now()
		byName[first].stop()
		waitLeader(t, l, fast.LeaseDuration, first)
		t.Logf("hand-over after a clean stop took %s", time.Since(began))
		// the stopped one comes back as a follower
		byName[first] = start(parent, first, map[string]Elector{"a": ea, "b": eb}[first], l)
	})
	t.Run("Partition", func(t *testing.T) {
		cur, n := l.now()
		began := time.Now()
		parts[cur].Store(true)
		// The follower takes over LeaseDuration after it last saw the
		// leader renew, plus up to two retries.
		next := waitLeader(t, l, fast.LeaseDuration+3*fast.RetryPeriod+time.Second, cur)
		took := time.Since(began)
		t.Logf("%s took over from the cut-off %s after %s", next, cur, took)
		if _, m := l.now(); m != n+1 {
			t.Fatalf("%d leaderships, want %d", m, n+1)
		}
		if o := byName[cur].el.Observe(); o.IsLeader {
			t.Fatalf("cut-off replica still thinks it leads: %+v", o)
		}
		parts[cur].Store(false)
		testenv.WaitFor(t, 5*time.Second, func() error {
			if o := byName[cur].el.Observe(); o.Leader != byName[next].el.Observe().Identity {
				return fmt.Errorf("healed replica observes %+v", o)
			}
			return nil
		})
		if who, _ := l.now(); who != next {
			t.Fatalf("leader changed to %s after healing", who)
		}
	})
}

func TestRepositoryElection(t *testing.T) {
	for name, url := range map[string]func(t *testing.T) string{
		"File": func(t *testing.T) string { return "file://" + filepath.Join(t.TempDir(), "repo") },
		"S3": func(t *testing.T) string {
			s3 := testenv.S3(t)
			return testenv.S3URL(t, s3.Endpoint, testenv.NewBucket(t, s3.Endpoint), "repo")
		},
	} {
		t.Run(name, func(t *testing.T) {
			u := url(t)
			openRepo(t, u)
			electionSuite(t, fast, func(t *testing.T, name string) (Elector, *atomic.Bool) {
				p := &partition{Terms: openRepo(t, u)}
				return NewRepository(p, name, fast, slog.Default().With("replica", name)), &p.cut
			})
		})
	}
}

func TestKubernetesElection(t *testing.T) {
	ns := testenv.NewNamespace(t)
	cfg, err := kube.Config(testenv.Kubeconfig(t), "")
	if err != nil {
		t.Fatal(err)
	}
	// client-go adds up to 20 % jitter to its retries; timings a little
	// slower than the repository's keep the apiserver unhurried.
	timing := Timing{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond}
	electionSuite(t, timing, func(t *testing.T, name string) (Elector, *atomic.Bool) {
		cut := &atomic.Bool{}
		c := rest.CopyConfig(cfg)
		c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				if cut.Load() {
					return nil, errCut
				}
				return rt.RoundTrip(req)
			})
		})
		e, err := NewKubernetes(c, ns, "linkdr", name, timing, slog.Default().With("replica", name))
		if err != nil {
			t.Fatal(err)
		}
		return e, cut
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNone(t *testing.T) {
	n := NewNone("solo")
	ctx, cancel := context.WithCancel(context.Background())
	led := make(chan struct{})
	go n.Run(ctx, func(ctx context.Context) { close(led); <-ctx.Done() })
	<-led
	if o := n.Observe(); !o.IsLeader || o.Leader != "solo" {
		t.Fatalf("%+v", o)
	}
	cancel()
}
