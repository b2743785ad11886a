package plan

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron is a validated schedule: 5-field cron ("*/15 * * * *") or a
// descriptor (@hourly, @daily, @every 30s). Times are UTC.
type Cron struct {
	Spec  string
	sched cron.Schedule
}

// ParseCron validates a schedule.
func ParseCron(spec string) (Cron, error) {
	s, err := cronParser.Parse(spec)
	if err != nil {
		return Cron{}, fmt.Errorf("invalid schedule %q: %v", spec, err)
	}
	return Cron{Spec: spec, sched: s}, nil
}

// IsZero reports whether no schedule is set.
func (c Cron) IsZero() bool { return c.sched == nil }

// Next returns the first activation after t.
func (c Cron) Next(t time.Time) time.Time { return c.sched.Next(t.UTC()) }

// MaxInterval is the longest gap between two consecutive runs over the next
// year of activations (sampled up to 2000 runs), which is what bounds the
// data a store can lose between backups.
func (c Cron) MaxInterval(from time.Time) time.Duration {
	var longest time.Duration
	t := c.Next(from)
	end := from.Add(366 * 24 * time.Hour)
	for i := 0; i < 2000 && t.Before(end); i++ {
		n := c.Next(t)
		if n.IsZero() {
			break
		}
		if g := n.Sub(t); g > longest {
			longest = g
		}
		t = n
	}
	return longest
}

// UnmarshalYAML parses and validates the schedule.
func (c *Cron) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "expected a schedule such as @hourly or \"*/15 * * * *\"")
	}
	v, err := ParseCron(n.Value)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*c = v
	return nil
}

// MarshalText writes the spec.
func (c Cron) MarshalText() ([]byte, error) { return []byte(c.Spec), nil }

// MarshalYAML writes the spec.
func (c Cron) MarshalYAML() (any, error) { return c.Spec, nil }
