package plan

import (
	"strings"
	"time"
)

// Stream-mode and wal-fetch defaults.
const (
	DefaultPartialInterval = 2 * time.Second
	DefaultPrefetch        = 8
)

// Default returns the plan every file is decoded onto. These are the only
// defaults linkdr has; docs and `linkdr init` refer to them.
func Default() *Plan {
	return &Plan{
		Version: 1,
		Objectives: Objectives{
			RTO:          Duration(4 * time.Hour),
			RPO:          Duration(time.Hour),
			Availability: "99.9%",
			Retention:    Duration(7 * year),
		},
		Encryption: Encryption{CompressionLevel: 2},
		Retention: Retention{
			KeepLast:    3,
			KeepHourly:  48,
			KeepDaily:   35,
			KeepWeekly:  12,
			KeepMonthly: 24,
			KeepYearly:  7,
			Schedule:    mustCron("@daily"),
		},
		Verify: Verify{Schedule: mustCron("@daily")},
		Serve:  defaultServe(),
	}
}

func mustCron(spec string) Cron {
	c, err := ParseCron(spec)
	if err != nil {
		panic(err)
	}
	return c
}

// DefaultRepository is the repository a store backs up into unless it names
// another.
const DefaultRepository = "primary"

// applyStoreDefaults fills the per-store defaults that depend on the key.
func applyStoreDefaults(p *Plan) {
	for name, s := range p.Stores {
		if s == nil {
			continue
		}
		s.Name = name
		if s.Repository == "" {
			s.Repository = DefaultRepository
		}
		if w := s.WAL; w != nil {
			if w.Slot == "" {
				w.Slot = "linkdr_" + strings.ReplaceAll(name, "-", "_")
			}
			if w.PartialInterval == 0 {
				w.PartialInterval = Duration(DefaultPartialInterval)
			}
			if w.Prefetch == nil {
				n := DefaultPrefetch
				w.Prefetch = &n
			}
		}
	}
}
