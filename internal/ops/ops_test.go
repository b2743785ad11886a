package ops

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
)

const pgStore = `  users-db:
    kind: postgres
    url: postgres://postgres@127.0.0.1:1/postgres
    backups: [{method: logical, schedule: "*/15 * * * *"}]
`

func TestState(t *testing.T) {
	rpo := time.Hour
	for _, c := range []struct {
		exposure time.Duration
		have     bool
		want     string
	}{
		{10 * time.Minute, true, StateOK},
		{48 * time.Minute, true, StateOK},
		{49 * time.Minute, true, StateAtRisk},
		{60 * time.Minute, true, StateAtRisk},
		{61 * time.Minute, true, StateBreached},
		{0, false, StateBreached},
	} {
		if got := State(c.exposure, rpo, c.have); got != c.want {
			t.Errorf("exposure %s (have=%v): %s, want %s", c.exposure, c.have, got, c.want)
		}
	}
}

// fakeBackup writes a logical backup consistent at t straight into the
// repository.
func fakeBackup(t *testing.T, r *Runner, at time.Time) *repo.Manifest {
	t.Helper()
	return fakeBackupOf(t, r, "logical", at)
}

func fakeBackupOf(t *testing.T, r *Runner, method string, at time.Time) *repo.Manifest {
	t.Helper()
	ctx := context.Background()
	rp, err := r.OpenRepo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	rp.SetClock(func() time.Time { return at })
	w, err := rp.NewBackup(repo.WriterOptions{Store: "users-db", Kind: "postgres", Method: method, Recipients: r.Plan.Encryption.Recipients})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := w.CreateArtifact(ctx, "x.dump", "", nil)
	a.Write([]byte("x"))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := w.Commit(ctx, repo.CommitInfo{ConsistentAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStatus(t *testing.T) {
	r := TestRunner(t, "mem://ops-status", pgStore)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	st, err := r.Status(context.Background())
	if err != nil || len(st) != 1 || st[0].State != StateBreached || st[0].Backups != 0 {
		t.Fatalf("no backups: %+v %v", st, err)
	}
	fakeBackup(t, r, now.Add(-2*time.Hour))
	m := fakeBackup(t, r, now.Add(-50*time.Minute))
	st, _ = r.Status(context.Background())
	if st[0].State != StateAtRisk || st[0].LatestID != m.ID || st[0].Exposure != 50*time.Minute || st[0].Backups != 2 {
		t.Fatalf("got %+v", st[0])
	}
}

func TestStatusUnreadableRepository(t *testing.T) {
	r := TestRunner(t, "", pgStore)
	r.Plan.Repositories["primary"] = plan.Repository{URL: "file:///nonexistent/linkdr-repo"}
	st, err := r.Status(context.Background())
	if err != nil || st[0].State != StateUnknown || !errors.Is(st[0].Err, repo.ErrNotFound) {
		t.Fatalf("got %+v %v", st, err)
	}
}

func TestApplyRetention(t *testing.T) {
	r := TestRunner(t, "mem://ops-retention", pgStore)
	r.Plan.Retention.KeepLast, r.Plan.Retention.KeepHourly, r.Plan.Retention.KeepDaily = 2, 0, 0
	r.Plan.Retention.KeepWeekly, r.Plan.Retention.KeepMonthly, r.Plan.Retention.KeepYearly = 0, 0, 0
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r.Now = func() time.Time { return now }
	var ids []string
	for i := 5; i >= 1; i-- {
		ids = append(ids, fakeBackup(t, r, now.Add(-time.Duration(i)*time.Hour)).ID)
	}
	// An interrupted backup from two days ago, and one from a minute ago
	// (maybe still running): only the old one is cleaned up.
	rp, _ := r.OpenRepo(context.Background(), "")
	for _, at := range []time.Time{now.Add(-48 * time.Hour), now.Add(-time.Minute)} {
		rp.SetClock(func() time.Time { return at })
		w, _ := rp.NewBackup(repo.WriterOptions{Store: "users-db", Kind: "postgres", Method: "logical", Recipients: r.Plan.Encryption.Recipients})
		a, _ := w.CreateArtifact(context.Background(), "half.dump", "", nil)
		a.Write([]byte("half"))
		a.Close()
	}

	reports, err := r.ApplyRetention(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := rp.Backups(context.Background(), "users-db"); len(all) != 5 {
		t.Fatalf("dry run deleted something: %d left", len(all))
	}
	if len(reports) != 2 || reports[0].Kept != 2 || reports[0].Removed != 3 || len(reports[1].Incomplete) != 1 {
		t.Fatalf("dry-run reports: %+v", reports)
	}
	if _, err := r.ApplyRetention(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	all, _ := rp.Backups(context.Background(), "users-db")
	if len(all) != 2 || all[0].ID != ids[3] || all[1].ID != ids[4] {
		t.Fatalf("after retention: %v", all)
	}
	inc, _ := rp.Incomplete(context.Background(), "users-db")
	if len(inc) != 1 {
		t.Fatalf("incomplete after retention: %v (want only the recent one)", inc)
	}
}

// A store with two methods: restore takes the newest backup of any method
// unless told one; a backup named with a method must be of it.
func TestResolveBackupMethod(t *testing.T) {
	r := TestRunner(t, "", `  users-db:
    kind: postgres
    url: postgres://postgres@127.0.0.1:1/postgres
    backups: [{method: logical, schedule: "@hourly"}, {method: physical, schedule: "@daily"}]
    wal: {mode: archive}
`)
	ctx := context.Background()
	now := time.Now().UTC()
	older := fakeBackupOf(t, r, "logical", now.Add(-2*time.Hour))
	logical := fakeBackupOf(t, r, "logical", now.Add(-time.Hour))
	physical := fakeBackupOf(t, r, "physical", now.Add(-time.Minute))
	for _, c := range []struct {
		opts RestoreOptions
		want string
		err  string
	}{
		{RestoreOptions{}, physical.ID, ""},
		{RestoreOptions{Method: "logical"}, logical.ID, ""},
		{RestoreOptions{Method: "physical"}, physical.ID, ""},
		{RestoreOptions{Backup: older.ID, Method: "logical"}, older.ID, ""},
		{RestoreOptions{Backup: older.ID, Method: "physical"}, "", "backup " + older.ID + " of users-db is of method logical, not physical"},
		{RestoreOptions{Method: "resp"}, "", `unknown backup method "resp" for store users-db (the plan gives it: logical, physical)`},
	} {
		rp, m, err := r.ResolveBackup(ctx, "users-db", c.opts)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%+v: error %v, want %q", c.opts, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c.opts, err)
			continue
		}
		rp.Close()
		if m.ID != c.want {
			t.Errorf("%+v: picked %s (%s), want %s", c.opts, m.ID, m.Method, c.want)
		}
	}
	// A method of the plan with no backup yet says so, and how to take one.
	r2 := TestRunner(t, "", `  users-db:
    kind: postgres
    url: postgres://postgres@127.0.0.1:1/postgres
    backups: [{method: logical, schedule: "@hourly"}, {method: physical, schedule: "@daily"}]
    wal: {mode: archive}
`)
	fakeBackupOf(t, r2, "logical", now)
	_, _, err := r2.ResolveBackup(ctx, "users-db", RestoreOptions{Method: "physical"})
	if !errors.Is(err, repo.ErrNoBackup) || !strings.Contains(err.Error(), "no physical backups yet") || !strings.Contains(err.Error(), "linkdr backup users-db --method physical") {
		t.Fatalf("no backup of the method: %v", err)
	}
}
