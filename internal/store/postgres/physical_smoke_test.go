package postgres_test

import (
	"context"
	"testing"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/testenv"
)

func TestPhysicalSmoke(t *testing.T) {
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{})
	r := ops.TestRunner(t, "", "  db:\n    kind: postgres\n    url: "+pg.URL+"\n    backups: [{method: physical}]\n")
	m, err := r.Backup(context.Background(), "db", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s", m.Source, m.Stats)
	for _, a := range m.Artifacts {
		t.Logf("%s %d %d", a.Name, a.PlainSize, a.StoredSize)
	}
}

func TestPhysicalSmokeVerify(t *testing.T) {
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{})
	r := ops.TestRunner(t, "", "  db:\n    kind: postgres\n    url: "+pg.URL+"\n    backups: [{method: physical}]\n")
	ctx := context.Background()
	m, err := r.Backup(ctx, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	rp, _ := r.OpenRepo(ctx, "")
	_, err = r.Verify(ctx, rp, m)
	t.Logf("verify: %v", err)
}
