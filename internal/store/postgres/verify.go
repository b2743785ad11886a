package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/pgarchive"
)

// sessionForSums makes COPY text in this session byte-identical to what
// pg_dump wrote (pg_dump fixes DateStyle, IntervalStyle and
// extra_float_digits itself; linkdr adds TimeZone and bytea_output).
const sessionForSums = `SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;
SET TimeZone = 'UTC'; SET bytea_output = hex; SET synchronize_seqscans = off`

// TableSum is one table's figures computed from a live database.
type TableSum struct {
	Schema, Name string
	Rows         int64
	Sum          pgarchive.RowSum
}

// SumTables recomputes row counts and checksums of tables from a live
// database, the same way pgarchive computed them from the dump.
func SumTables(ctx context.Context, c *pgx.Conn, tables []*pgarchive.Table) ([]TableSum, error) {
	if _, err := c.Exec(ctx, sessionForSums); err != nil {
		return nil, fmt.Errorf("prepare session: %w", err)
	}
	out := make([]TableSum, 0, len(tables))
	for _, t := range tables {
		sum, err := sumTable(ctx, c, t)
		if err != nil {
			return out, err
		}
		out = append(out, sum)
	}
	return out, nil
}

// sumTable reads one table on a session SumTables has set up.
func sumTable(ctx context.Context, c *pgx.Conn, t *pgarchive.Table) (TableSum, error) {
	h := pgarchive.NewRowHasher()
	sql := fmt.Sprintf("COPY %s %s TO STDOUT", pgx.Identifier{t.Schema, t.Name}.Sanitize(), t.Columns)
	if _, err := c.PgConn().CopyTo(ctx, h, sql); err != nil {
		return TableSum{}, fmt.Errorf("read table %s.%s: %w", t.Schema, t.Name, err)
	}
	rows, sum := h.Result()
	return TableSum{Schema: t.Schema, Name: t.Name, Rows: rows, Sum: sum}, nil
}

// verifyTables proves a restored database equals the dump, table by
// table, reading up to jobs tables at once: each connection takes the
// largest table not yet taken, so one large table does not end up queued
// behind others.
func verifyTables(ctx context.Context, ep *endpoint, st *DatabaseStats, jobs int) (string, error) {
	if st == nil || st.Unavailable != "" {
		reason := "the manifest has no table figures"
		if st != nil {
			reason = st.Unavailable
		}
		return "", fmt.Errorf("cannot verify: %s (hint: restore with --verify=false)", reason)
	}
	order := make([]int, len(st.Tables))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(st.Tables[b].Bytes, st.Tables[a].Bytes) })
	next := make(chan int, len(order))
	for _, i := range order {
		next <- i
	}
	close(next)
	got := make([]TableSum, len(st.Tables))
	g, gctx := errgroup.WithContext(ctx)
	for range max(min(jobs, len(st.Tables)), 1) {
		g.Go(func() error {
			c, err := ep.connect(gctx)
			if err != nil {
				return err
			}
			defer c.Close(context.Background())
			if _, err := c.Exec(gctx, sessionForSums); err != nil {
				return fmt.Errorf("prepare session: %w", err)
			}
			for i := range next {
				if got[i], err = sumTable(gctx, c, st.Tables[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	var bad []string
	for i, t := range st.Tables {
		g := got[i]
		switch {
		case g.Rows != t.Rows:
			bad = append(bad, fmt.Sprintf("%s.%s has %d rows, backup has %d", t.Schema, t.Name, g.Rows, t.Rows))
		case g.Sum != t.Sum:
			bad = append(bad, fmt.Sprintf("%s.%s content checksum differs", t.Schema, t.Name))
		}
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("%w: %s", store.ErrMismatch, strings.Join(bad, "; "))
	}
	return fmt.Sprintf("%d tables, %d rows: counts and checksums match", len(st.Tables), st.Rows), nil
}
