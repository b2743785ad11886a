package action

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
)

func init() { register("restore", restoreAction{}) }

// restoreAction runs a linkdr restore: a store's newest backup (of a
// method, if given), a named one, or the newest one consistent before a
// time, into a target.
type restoreAction struct{}

func (restoreAction) options(ctx context.Context, env *Env, p Params) (string, ops.RestoreOptions, error) {
	var o ops.RestoreOptions
	if env.Runner == nil {
		return "", o, fmt.Errorf("restore needs the plan's repositories (no runner)")
	}
	store, err := p.Required("store")
	if err != nil {
		return "", o, err
	}
	o.Backup = p.String("backup", "")
	if o.Method = p.String("method", ""); o.Method != "" {
		if err := env.Runner.CheckMethod(store, o.Method); err != nil {
			return "", o, fmt.Errorf("parameter method: %w", err)
		}
	}
	o.Repository = p.String("repository", "")
	o.Target = p.String("target", "")
	o.Select = p.Strings("select")
	if o.Force, err = p.Bool("force", false); err != nil {
		return "", o, err
	}
	if o.Verify, err = p.Bool("verify", true); err != nil {
		return "", o, err
	}
	if o.Jobs, err = p.Int("jobs", 1); err != nil {
		return "", o, err
	}
	if o.Target != "" {
		if u, err := url.Parse(o.Target); err == nil {
			if pw, ok := u.User.Password(); ok {
				env.secret(pw)
			}
		}
	}
	if before := p.String("before", ""); before != "" {
		t, err := parseTime(before)
		if err != nil {
			return "", o, fmt.Errorf("parameter before: %w", err)
		}
		id, err := backupBefore(ctx, env.Runner, store, o.Repository, o.Method, t)
		if err != nil {
			return "", o, err
		}
		o.Backup = id
	}
	return store, o, nil
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04 MST", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time like 2026-01-01T12:00:00Z or \"2026-01-01 12:00:00 UTC\"", s)
}

// backupBefore picks the newest backup (of method, if not "") whose data
// is from no later than t: the last known good state before corruption or
// a breach.
func backupBefore(ctx context.Context, r *ops.Runner, store, repoName, method string, t time.Time) (string, error) {
	cfg, err := r.StoreConfig(store)
	if err != nil {
		return "", err
	}
	if repoName == "" {
		repoName = cfg.Repository
	}
	rp, err := r.OpenRepo(ctx, repoName)
	if err != nil {
		return "", err
	}
	defer rp.Close()
	list, err := rp.Backups(ctx, store)
	if err != nil {
		return "", err
	}
	var best *repo.Manifest
	for _, m := range list {
		if (method == "" || m.Method == method) && !m.ConsistentAt.After(t) && (best == nil || m.ConsistentAt.After(best.ConsistentAt)) {
			best = m
		}
	}
	if best == nil {
		what := "backup"
		if method != "" {
			what = method + " backup"
		}
		return "", fmt.Errorf("no %s of %s is consistent at or before %s (%d backups)", what, store, t.UTC().Format(time.RFC3339), len(list))
	}
	return best.ID, nil
}

func (a restoreAction) Check(ctx context.Context, env *Env, p Params) error {
	store, o, err := a.options(ctx, env, p)
	if err != nil {
		return err
	}
	rp, m, err := env.Runner.ResolveBackup(ctx, store, o)
	if err != nil {
		return err
	}
	rp.Close()
	if _, err := env.Runner.Identities(); err != nil {
		return fmt.Errorf("restore needs the age identity: %w", err)
	}
	target := o.Target
	if target == "" {
		cfg, _ := env.Runner.StoreConfig(store)
		target = cfg.URL.Reveal()
	}
	if err := reachable(ctx, target); err != nil {
		return fmt.Errorf("restore target: %w", err)
	}
	env.printf("would restore %s backup %s (consistent at %s) into %s", store, m.ID, m.ConsistentAt.UTC().Format(time.RFC3339), redacted(target))
	return nil
}

// defaultPorts are the ports of target URLs that name none.
var defaultPorts = map[string]string{"postgres": "5432", "postgresql": "5432", "redis": "6379",
	"http": "80", "https": "443", "qdrant": "6333"}

// reachable dials the host of a server URL: the target must at least
// answer before a restore is worth starting. An s3:// target names a
// bucket, not a host: its endpoint (S3-compatible servers) is dialled,
// AWS itself is taken as reachable.
func reachable(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a server URL", redacted(raw))
	}
	if u.Scheme == "s3" {
		ep := u.Query().Get("endpoint")
		if ep == "" {
			return nil
		}
		if u, err = url.Parse(ep); err != nil || u.Host == "" {
			return fmt.Errorf("endpoint %q of %s is not a URL", ep, redacted(raw))
		}
	}
	// A Redis Cluster URL may list several seed nodes; the first will do.
	host, _, _ := strings.Cut(u.Host, ",")
	if _, _, err := net.SplitHostPort(host); err != nil {
		port, ok := defaultPorts[u.Scheme]
		if !ok {
			return fmt.Errorf("%s names no port (hint: write host:port)", redacted(raw))
		}
		host = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("%s does not answer: %w", host, err)
	}
	return c.Close()
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

func (a restoreAction) Run(ctx context.Context, env *Env, p Params) (Result, error) {
	store, o, err := a.options(ctx, env, p)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	m, res, err := env.Runner.Restore(ctx, store, o)
	out := Result{"store": store}
	if m != nil {
		out["backup"] = m.ID
		out["consistent_at"] = m.ConsistentAt.UTC().Format(time.RFC3339Nano)
		env.printf("restoring %s backup %s (consistent at %s)", store, m.ID, m.ConsistentAt.UTC().Format(time.RFC3339))
	}
	if res != nil {
		var items []any
		for _, it := range res.Items {
			items = append(items, map[string]any{"name": it.Name, "target": redacted(it.Target), "verified": it.Verified, "checked": it.Checked, "duration_ms": it.Duration.Milliseconds()})
			env.printf("restored %s into %s in %s; verified: %v %s", it.Name, redacted(it.Target), it.Duration.Round(time.Millisecond), it.Verified, it.Checked)
		}
		out["items"] = items
		out["target"] = redacted(res.Target)
	}
	out["duration_ms"] = time.Since(start).Milliseconds()
	if err != nil {
		return out, err
	}
	return out, nil
}
