package drill_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/linkapp/linkdr/internal/drill"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
)

func points(n, from int) []qdranttest.Point {
	pts := make([]qdranttest.Point, n)
	for i := range pts {
		pts[i] = qdranttest.Point{ID: uint64(from + i), Vector: []float32{float32(i), 0.5, 0.25, 1}}
	}
	return pts
}

// TestQdrantDrill drills a Qdrant store against the OpenAPI-validated test
// server (no Qdrant server installs here): collections come back under
// scratch names, are counted, and are deleted; a collection that lost
// most of its points before the backup fails the next drill.
func TestQdrantDrill(t *testing.T) {
	c := qdranttest.New(t, qdranttest.Options{APIKey: "k", YellowPolls: 1})
	c.CreateCollection("posts", 4, "Cosine")
	c.Upsert("posts", points(300, 1))
	r := ops.TestRunner(t, "", fmt.Sprintf(`  vectors:
    kind: qdrant
    url: %s
    api_key: k
    backups: [{method: snapshot}]
checks:
  posts-green: {type: qdrant, store: vectors, collection: posts}
`, c.URL()))
	ctx := context.Background()
	if _, err := r.Backup(ctx, "vectors", ""); err != nil {
		t.Fatal(err)
	}
	dr := &drill.Runner{Ops: r}
	rep, err := dr.Restore(ctx, drill.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Stores[0]
	if !s.OK || len(s.Integrity.Items) != 1 || s.Integrity.Items[0].Rows != 300 || len(s.Cleanup.Removed) != 1 {
		t.Fatalf("store: %+v", s)
	}
	if len(s.Checks) != 1 || s.Checks[0].Status != "skipped" {
		t.Fatalf("checks: %+v", s.Checks)
	}
	if got := len(c.Points(strings.TrimPrefix(s.Cleanup.Removed[0], "collection "))); got != 0 {
		t.Fatalf("scratch collection still has %d points", got)
	}
	if len(c.Points("posts")) != 300 {
		t.Fatal("live collection touched")
	}
	if v := c.Violations(); len(v) > 0 {
		t.Fatalf("requests outside the Qdrant API: %v", v)
	}

	c.DeleteCollection("posts")
	c.CreateCollection("posts", 4, "Cosine")
	c.Upsert("posts", points(20, 1000))
	m, err := r.Backup(ctx, "vectors", "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err = dr.Restore(ctx, drill.RestoreOptions{})
	if !errors.Is(err, drill.ErrFailed) {
		t.Fatalf("got %v", err)
	}
	want := fmt.Sprintf("posts: 20 points in backup %s, 300 in the previous backup", m.ID)
	if s := rep.Stores[0]; s.Phase != "history" || !strings.Contains(s.Error, want) || !s.Cleanup.OK {
		t.Fatalf("phase %q error %q cleanup %+v", s.Phase, s.Error, s.Cleanup)
	}
}
