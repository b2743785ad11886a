package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

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
		h := pgarchive.NewRowHasher()
		sql := fmt.Sprintf("COPY %s %s TO STDOUT", pgx.Identifier{t.Schema, t.Name}.Sanitize(), t.Columns)
		if _, err := c.PgConn().CopyTo(ctx, h, sql); err != nil {
			return out, fmt.Errorf("read table %s.%s: %w", t.Schema, t.Name, err)
		}
		rows, sum := h.Result()
		out = append(out, TableSum{Schema: t.Schema, Name: t.Name, Rows: rows, Sum: sum})
	}
	return out, nil
}

// verifyTables proves a restored database equals the dump, table by table.
func verifyTables(ctx context.Context, ep *endpoint, st *DatabaseStats) (string, error) {
	if st == nil || st.Unavailable != "" {
		reason := "the manifest has no table figures"
		if st != nil {
			reason = st.Unavailable
		}
		return "", fmt.Errorf("cannot verify: %s (hint: restore with --verify=false)", reason)
	}
	c, err := ep.connect(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close(context.Background())
	got, err := SumTables(ctx, c, st.Tables)
	if err != nil {
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
