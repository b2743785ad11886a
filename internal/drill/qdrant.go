package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store/qdrant"
)

func init() { RegisterKind("qdrant", qdrantKind{}) }

// qdrantKind restores each collection under a scratch name,
// <collection>-linkdr-drill-<drill id>, next to the live ones (or on the
// drill's scratch node). Canaries are not written into Qdrant: a point
// needs a vector of the collection's own dimensions, and linkdr does not
// invent vectors in production collections.
type qdrantKind struct{}

func qdrantKey(env Env) (string, error) {
	key := env.Store.APIKey.Reveal()
	if f := env.Store.APIKeyFile; f != "" {
		b, err := os.ReadFile(env.Ops.Plan.Resolve(f))
		if err != nil {
			return "", fmt.Errorf("store %s: api_key_file: %w", env.Store.Name, err)
		}
		key = strings.TrimSpace(string(b))
	}
	return key, nil
}

func (qdrantKind) WriteCanary(context.Context, Env, Canary) error      { return nil }
func (qdrantKind) LiveCanaries(context.Context, Env) ([]Canary, error) { return nil, nil }

func decodeQdrant(m *repo.Manifest) (qdrant.Stats, error) {
	var st qdrant.Stats
	if err := json.Unmarshal(m.Stats, &st); err != nil {
		return st, fmt.Errorf("backup %s: manifest stats: %w", m.ID, err)
	}
	return st, nil
}

func (qdrantKind) Scratch(ctx context.Context, env Env, m *repo.Manifest) (Scratch, error) {
	st, err := decodeQdrant(m)
	if err != nil {
		return nil, err
	}
	key, err := qdrantKey(env)
	if err != nil {
		return nil, err
	}
	base := env.ScratchURL
	if base == "" {
		base = env.Store.URL.Reveal()
	}
	c, err := qdrant.NewClient(base, key)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", env.Store.Name, err)
	}
	s := &qdrantScratch{env: env, client: c, rename: map[string]string{}}
	for _, col := range st.Collections {
		s.rename[col.Name] = col.Name + "-linkdr-drill-" + strings.ToLower(env.DrillID)
		s.order = append(s.order, col.Name)
	}
	return s, nil
}

type qdrantScratch struct {
	env     Env
	client  *qdrant.Client
	rename  map[string]string
	order   []string
	checked []string
	used    bool
}

func (s *qdrantScratch) Describe() string {
	var names []string
	for _, c := range s.order {
		names = append(names, s.rename[c])
	}
	return fmt.Sprintf("%s collections %s", s.client.URL(), strings.Join(names, ", "))
}

// Restore uploads the snapshots under the scratch names; with Verify the
// store waits until each collection is green with its points count and
// config matching the manifest.
func (s *qdrantScratch) Restore(ctx context.Context, m *repo.Manifest) error {
	s.used = true
	target := ""
	if s.env.ScratchURL != "" {
		target = s.env.ScratchURL
	}
	_, res, err := s.env.Ops.Restore(ctx, m.Store, ops.RestoreOptions{Backup: m.ID, Target: target, Rename: s.rename, Verify: true})
	if res != nil {
		for _, it := range res.Items {
			s.checked = append(s.checked, it.Checked)
		}
	}
	return err
}

func (s *qdrantScratch) Compare(ctx context.Context, m *repo.Manifest) (drillreport.Integrity, error) {
	st, err := decodeQdrant(m)
	if err != nil {
		return drillreport.Integrity{}, err
	}
	var in drillreport.Integrity
	var bad []string
	for _, col := range st.Collections {
		n, err := s.client.Count(ctx, s.rename[col.Name])
		if err != nil {
			return in, fmt.Errorf("count %s: %w", s.rename[col.Name], err)
		}
		it := drillreport.IntegrityItem{Name: col.Name, ExpectedRows: col.Points, Rows: n, OK: n == col.Points}
		if !it.OK {
			it.Problem = fmt.Sprintf("%d points restored, the backup's manifest says %d", n, col.Points)
			bad = append(bad, col.Name+": "+it.Problem)
		}
		in.Items = append(in.Items, it)
	}
	ok := strings.Join(s.checked, "; ")
	if ok == "" {
		ok = fmt.Sprintf("%d collections: points counts match the manifest", len(st.Collections))
	}
	return judgeIntegrity(in, bad, ok)
}

func (s *qdrantScratch) Canaries(context.Context) ([]Canary, error) { return nil, nil }

// CheckURL: a qdrant check names its collection, which the copy holds
// under another name, so it cannot be pointed at the copy by URL alone.
func (s *qdrantScratch) CheckURL(string) (string, bool) { return "", false }

func (s *qdrantScratch) Cleanup(ctx context.Context) ([]string, error) {
	if !s.used {
		return nil, nil
	}
	var removed []string
	var errs []error
	for _, c := range s.order {
		existed, err := s.client.DeleteCollection(ctx, s.rename[c])
		if err != nil && !qdrant.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete collection %s: %w", s.rename[c], err))
			continue
		}
		if existed {
			removed = append(removed, "collection "+s.rename[c])
		}
	}
	return removed, errors.Join(errs...)
}

func (qdrantKind) History(prev, cur *repo.Manifest, maxShrink float64) ([]drillreport.HistoryFinding, error) {
	ps, err := decodeQdrant(prev)
	if err != nil {
		return nil, err
	}
	cs, err := decodeQdrant(cur)
	if err != nil {
		return nil, err
	}
	now := map[string]int64{}
	present := map[string]bool{}
	for _, c := range cs.Collections {
		now[c.Name], present[c.Name] = c.Points, true
	}
	var out []drillreport.HistoryFinding
	for _, c := range ps.Collections {
		if f, ok := judgeShrink(prev, cur, counted{c.Name, "collection", "points", c.Points, now[c.Name], present[c.Name]}, maxShrink); ok {
			out = append(out, f)
		}
	}
	return out, nil
}
