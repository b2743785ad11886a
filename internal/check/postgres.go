package check

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/linkapp/linkdr/internal/plan"
)

// target is the URL a store-backed check probes, with the password from
// the store's password_file when the URL carries none, and the check's
// database (postgres) unless StoreURL already chose one.
func (r *Runner) target(c *plan.Check) (string, error) {
	raw := c.URL.Reveal()
	var st *plan.Store
	redirected := false
	if c.Store != "" {
		st = r.Plan.Stores[c.Store]
		if st == nil {
			return "", fmt.Errorf("no store %q in the plan", c.Store)
		}
		raw = st.URL.Reveal()
		if r.StoreURL != nil {
			if u, ok := r.StoreURL(c.Store, c.Database); ok {
				raw, redirected = u, true
			}
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid URL for check %s", c.Name)
	}
	if c.Database != "" && !redirected {
		u.Path, u.RawPath = "/"+c.Database, ""
	}
	if st != nil && st.PasswordFile != "" && u.User != nil {
		if _, has := u.User.Password(); !has {
			b, err := os.ReadFile(r.Plan.Resolve(st.PasswordFile))
			if err != nil {
				return "", fmt.Errorf("store %s password_file: %w", st.Name, err)
			}
			u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(b), "\r\n"))
		}
	}
	return u.String(), nil
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	return u.Redacted()
}

func probePostgres(ctx context.Context, r *Runner, c *plan.Check) (map[string]any, error) {
	raw, err := r.target(c)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	if q.Get("application_name") == "" {
		q.Set("application_name", "linkdr-check")
	}
	u.RawQuery = q.Encode()
	start := time.Now()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), scrubPassword(err, u))
	}
	defer conn.Close(context.Background())
	vars := map[string]any{"connected": true}
	var inRecovery bool
	var version string
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('server_version')`).Scan(&inRecovery, &version); err != nil {
		return nil, fmt.Errorf("query server state: %w", err)
	}
	vars["in_recovery"], vars["server_version"] = inRecovery, version
	// A standby's lag is how far its replay is behind the newest
	// transaction it has seen: zero when it has replayed everything it
	// received, else the age of the last replayed transaction. On a primary
	// it is the largest replay lag its streaming standbys report.
	var lagSeconds float64
	var replicas int
	if inRecovery {
		err = conn.QueryRow(ctx, `SELECT CASE
			WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
			ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0) END::float8`).Scan(&lagSeconds)
	} else {
		err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'streaming'),
			coalesce(extract(epoch FROM max(replay_lag)), 0)::float8 FROM pg_stat_replication`).Scan(&replicas, &lagSeconds)
	}
	if err != nil {
		return nil, fmt.Errorf("query replication state: %w", err)
	}
	vars["replication_lag"] = time.Duration(lagSeconds * float64(time.Second))
	vars["replicas"] = replicas
	vars["rows"] = 0
	if c.Query != "" {
		rows, err := conn.Query(ctx, c.Query)
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		n := 0
		for rows.Next() {
			if n == 0 {
				vals, err := rows.Values()
				if err != nil {
					rows.Close()
					return nil, fmt.Errorf("query: %w", err)
				}
				if len(vals) > 0 {
					vars["value"] = plain(vals[0])
				}
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		vars["rows"] = n
	}
	vars["latency"] = time.Since(start)
	return vars, nil
}

// plain turns driver values into what conditions compare naturally.
func plain(v any) any {
	switch x := v.(type) {
	case int16:
		return int(x)
	case int32:
		return int(x)
	case int64:
		return int(x)
	case float32:
		return float64(x)
	case []byte:
		return string(x)
	case pgtype.Numeric:
		if f, err := x.Float64Value(); err == nil && f.Valid {
			return f.Float64
		}
		return nil
	case fmt.Stringer:
		if _, isTime := v.(time.Time); !isTime {
			return x.String()
		}
	}
	return v
}

func scrubPassword(err error, u *url.URL) error {
	if u.User == nil {
		return err
	}
	if p, ok := u.User.Password(); ok && p != "" && strings.Contains(err.Error(), p) {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), p, "xxxxx"))
	}
	return err
}
