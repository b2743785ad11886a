package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
)

func (r *Runner) ops() *ops.Runner {
	if r.Ops != nil {
		return r.Ops
	}
	return &ops.Runner{Plan: r.Plan, Log: r.log(), Now: r.Now}
}

// probeBackup reads the repositories: the store's RPO exposure against
// its objective (ops.Runner.Status), and its last verification — the
// integrity result of its newest drill, or with verify: true a full read
// of the latest backup now. Without store it covers every store of the
// plan: fresh and verified only if true for all, exposure the worst.
func probeBackup(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	or := r.ops()
	all, err := or.Status(ctx)
	if err != nil {
		return nil, err
	}
	var sel []ops.StoreStatus
	for _, s := range all {
		if c.Store == "" || s.Store == c.Store {
			sel = append(sel, s)
		}
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("no stores to check")
	}
	vars := map[string]any{"fresh": true, "verified": true, "drilled": true, "backups": 0, "state": ops.StateOK, "verify_error": ""}
	var exposure, rpo, drillAge time.Duration
	var problems, verifyErrs []string
	worst := map[string]int{ops.StateOK: 0, ops.StateAtRisk: 1, ops.StateBreached: 2, ops.StateUnknown: 3}
	var reports []*drillreport.Report
	loaded := false
	for _, s := range sel {
		if s.Err != nil {
			return nil, fmt.Errorf("store %s: %w", s.Store, s.Err)
		}
		vars["backups"] = vars["backups"].(int) + s.Backups
		if worst[s.State] > worst[vars["state"].(string)] {
			vars["state"] = s.State
		}
		fresh := s.Backups > 0 && s.Exposure <= s.RPO
		if !fresh {
			vars["fresh"] = false
			problems = append(problems, fmt.Sprintf("%s %s", s.Store, strings.ToLower(s.State)))
		}
		if s.Exposure > exposure || exposure == 0 {
			exposure, rpo = s.Exposure, s.RPO
		}
		// Last verification.
		if c.Verify {
			if err := verifyLatest(ctx, or, s.Store); err != nil {
				vars["verified"] = false
				verifyErrs = append(verifyErrs, s.Store+": "+err.Error())
			}
		}
		// Drill reports live in the primary repository.
		if !loaded {
			rp, err := or.OpenRepo(ctx, plan.DefaultRepository)
			if err != nil {
				return nil, err
			}
			reports, err = drillreport.List(ctx, rp.Bucket())
			rp.Close()
			if err != nil {
				return nil, err
			}
			loaded = true
		}
		rep, st := drillreport.LatestFor(reports, s.Store)
		switch {
		case st == nil:
			vars["drilled"] = false
			if !c.Verify {
				vars["verified"] = false
				verifyErrs = append(verifyErrs, s.Store+": never drilled (hint: run `linkdr drill run restore`, or set verify: true)")
			}
		default:
			if age := r.now().Sub(rep.Finished); age > drillAge {
				drillAge = age
			}
			if !st.OK {
				vars["drilled"] = false
			}
			if !c.Verify && !st.Integrity.OK {
				vars["verified"] = false
				verifyErrs = append(verifyErrs, fmt.Sprintf("%s: drill %s did not prove the restore: %s", s.Store, rep.ID, st.Error))
			}
		}
	}
	vars["exposure"], vars["rpo"], vars["drill_age"] = exposure, rpo, drillAge
	if len(verifyErrs) > 0 {
		vars["verify_error"] = strings.Join(verifyErrs, "; ")
	}
	if len(problems) > 0 {
		vars["error"] = strings.Join(problems, ", ")
	}
	return vars, nil
}

func verifyLatest(ctx context.Context, or *ops.Runner, store string) error {
	cfg, err := or.StoreConfig(store)
	if err != nil {
		return err
	}
	rp, err := or.OpenRepo(ctx, cfg.Repository)
	if err != nil {
		return err
	}
	defer rp.Close()
	m, err := rp.Latest(ctx, store, "")
	if err != nil {
		return err
	}
	_, err = or.Verify(ctx, rp, m)
	return err
}
