package drillreport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/linkapp/linkdr/internal/repo"
)

// FormatVersion of drill reports.
const FormatVersion = 1

// Prefix is where reports live in a repository.
const Prefix = "drills/"

// ErrNotFound: no report matches.
var ErrNotFound = errors.New("no such drill report")

// Report is one drill run.
type Report struct {
	Format int    `json:"format"`
	ID     string `json:"id"`
	// Drill is the plan's drill name ("" for an ad-hoc run).
	Drill string `json:"drill,omitempty"`
	// Kind: restore or failover.
	Kind     string    `json:"kind"`
	Title    string    `json:"title,omitempty"`
	Plan     string    `json:"plan"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// OK is true when every part passed.
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Objectives are the plan's at the time of the drill.
	Objectives Objectives `json:"objectives"`
	// Stores: one entry per store drilled (restore drills).
	Stores []Store `json:"stores,omitempty"`
	// Skipped lists stores of kinds no drill can restore yet, as
	// "name (kind)".
	Skipped []string `json:"skipped,omitempty"`
	// Scenario: the rehearsed runbook (failover drills).
	Scenario *Scenario `json:"scenario,omitempty"`
	// Checks run after the drill (the drill's checks: list).
	Checks  []Check   `json:"checks,omitempty"`
	Tool    repo.Tool `json:"tool"`
	Host    string    `json:"host,omitempty"`
	Trigger string    `json:"trigger,omitempty"` // cli, schedule, runbook
}

// Objectives are RTO and RPO in seconds.
type Objectives struct {
	RTOSeconds float64 `json:"rto_seconds"`
	RPOSeconds float64 `json:"rpo_seconds"`
}

// Store is the drill of one store: restore into scratch, integrity,
// checks, canaries, cleanup, and the measured RTO and RPO.
type Store struct {
	Store        string    `json:"store"`
	Kind         string    `json:"kind"`
	Repository   string    `json:"repository"`
	BackupID     string    `json:"backup_id,omitempty"`
	BackupMethod string    `json:"backup_method,omitempty"`
	ConsistentAt time.Time `json:"consistent_at,omitempty"`
	// Scratch is where the backup was restored (password masked).
	Scratch string `json:"scratch,omitempty"`

	// RestoreSeconds is the restore alone; ValidateSeconds the integrity
	// comparison and checks; RTOSeconds their sum — the measured RTO.
	RestoreSeconds  float64 `json:"restore_seconds"`
	ValidateSeconds float64 `json:"validate_seconds"`
	RTOSeconds      float64 `json:"rto_seconds"`
	// RPOSeconds is the age of the newest restorable data at drill time
	// (drill start − consistent_at): what an outage then would have lost.
	RPOSeconds          float64 `json:"rpo_seconds"`
	RTOObjectiveSeconds float64 `json:"rto_objective_seconds"`
	RPOObjectiveSeconds float64 `json:"rpo_objective_seconds"`

	Integrity Integrity `json:"integrity"`
	// History compares the backup's figures with the previous backup's.
	History []HistoryFinding `json:"history,omitempty"`
	Checks  []Check          `json:"checks,omitempty"`
	// Canaries are the canary records found in the live store, each with
	// whether it survived into the restored copy.
	Canaries []Canary `json:"canaries,omitempty"`
	// CanaryRPOSeconds is drill start − the newest canary that survived:
	// an upper bound of the data lost, proven by data rather than by
	// the manifest. Absent when no canary survived.
	CanaryRPOSeconds *float64 `json:"canary_rpo_seconds,omitempty"`
	Cleanup          Cleanup  `json:"cleanup"`

	OK bool `json:"ok"`
	// Phase is where the drill of this store stopped when it failed:
	// canary, resolve, scratch, restore, integrity, history, checks.
	Phase string `json:"phase,omitempty"`
	Error string `json:"error,omitempty"`
}

// Integrity is the comparison of the restored data with the manifest.
type Integrity struct {
	OK      bool            `json:"ok"`
	Summary string          `json:"summary,omitempty"`
	Items   []IntegrityItem `json:"items,omitempty"`
}

// IntegrityItem is one compared unit (a table, a key space, a collection).
type IntegrityItem struct {
	Name         string `json:"name"`
	ExpectedRows int64  `json:"expected_rows"`
	Rows         int64  `json:"rows"`
	ExpectedSum  string `json:"expected_checksum,omitempty"`
	Sum          string `json:"checksum,omitempty"`
	OK           bool   `json:"ok"`
	Problem      string `json:"problem,omitempty"`
}

// HistoryFinding is one table's size in this backup against the previous.
type HistoryFinding struct {
	Name           string  `json:"name"`
	PreviousBackup string  `json:"previous_backup"`
	PreviousRows   int64   `json:"previous_rows"`
	Rows           int64   `json:"rows"`
	Shrink         float64 `json:"shrink"`
	OK             bool    `json:"ok"`
	Problem        string  `json:"problem,omitempty"`
}

// Check is the outcome of one check.
type Check struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	OK       bool    `json:"ok"`
	Required bool    `json:"required"`
	Status   string  `json:"status"`
	Message  string  `json:"message,omitempty"`
	Seconds  float64 `json:"seconds"`
}

// Canary is one canary record.
type Canary struct {
	ID        string    `json:"id"`
	Database  string    `json:"database,omitempty"`
	WrittenAt time.Time `json:"written_at"`
	Survived  bool      `json:"survived"`
	// Expected is true when the canary was written at or before the
	// backup's consistent_at, so the restore must hold it.
	Expected bool `json:"expected"`
}

// Cleanup says what scratch resources were removed.
type Cleanup struct {
	OK      bool     `json:"ok"`
	Removed []string `json:"removed,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Scenario is a rehearsed runbook.
type Scenario struct {
	ID         string  `json:"id"`
	Title      string  `json:"title,omitempty"`
	RunID      string  `json:"run_id,omitempty"`
	RTOSeconds float64 `json:"rto_seconds"`
	// RTOObjectiveSeconds is the scenario's RTO.
	RTOObjectiveSeconds float64 `json:"rto_objective_seconds"`
	Phases              []Phase `json:"phases,omitempty"`
}

// Phase is one runbook phase against its budget.
type Phase struct {
	Name          string  `json:"name"`
	Seconds       float64 `json:"seconds"`
	BudgetSeconds float64 `json:"budget_seconds"`
	OK            bool    `json:"ok"`
}

// Key is the object key of a report.
func Key(id string) string { return Prefix + id + ".json" }

// Save writes a report. Reports are never overwritten.
func Save(ctx context.Context, b *blob.Bucket, r *Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	w, err := b.NewWriter(ctx, Key(r.ID), &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if err != nil {
		return fmt.Errorf("save drill report %s: %w", r.ID, err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		w.Close()
		return fmt.Errorf("save drill report %s: %w", r.ID, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("save drill report %s: %w", r.ID, err)
	}
	return nil
}

// List reads every report, oldest first.
func List(ctx context.Context, b *blob.Bucket) ([]*Report, error) {
	return (&Cache{}).List(ctx, b)
}

// Cache keeps the reports it read: a report is never overwritten, so a
// daemon listing them on every refresh reads only the new ones. The zero
// Cache is ready; it is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	byKey map[string]*Report
}

// List reads every report of the bucket, oldest first, reading only those
// not read before. The reports are shared between calls: callers must
// not change them.
func (c *Cache) List(ctx context.Context, b *blob.Bucket) ([]*Report, error) {
	var keys []string
	it := b.List(&blob.ListOptions{Prefix: Prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list drill reports: %w", err)
		}
		if strings.HasSuffix(obj.Key, ".json") && !obj.IsDir {
			keys = append(keys, obj.Key)
		}
	}
	sort.Strings(keys)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]*Report{}
	}
	out := make([]*Report, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		seen[k] = true
		r, ok := c.byKey[k]
		if !ok {
			var err error
			if r, err = read(ctx, b, k); err != nil {
				return nil, err
			}
			c.byKey[k] = r
		}
		out = append(out, r)
	}
	for k := range c.byKey {
		if !seen[k] {
			delete(c.byKey, k)
		}
	}
	return out, nil
}

// Load reads one report by id or unique id prefix; "" or "latest" is the
// newest.
func Load(ctx context.Context, b *blob.Bucket, id string) (*Report, error) {
	all, err := List(ctx, b)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: the repository has no drill reports yet (hint: run `linkdr drill run restore`)", ErrNotFound)
	}
	if id == "" || id == "latest" {
		return all[len(all)-1], nil
	}
	var match []*Report
	for _, r := range all {
		if r.ID == id {
			return r, nil
		}
		if strings.HasPrefix(r.ID, id) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %q (hint: `linkdr drill list` shows the ids)", ErrNotFound, id)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("drill id prefix %q is ambiguous: %d reports match", id, len(match))
}

func read(ctx context.Context, b *blob.Bucket, key string) (*Report, error) {
	data, err := b.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if r.Format > FormatVersion {
		return nil, fmt.Errorf("%s: drill report format %d is newer than this linkdr reads (%d)", key, r.Format, FormatVersion)
	}
	return &r, nil
}

// LatestFor returns the newest report that drilled the store, or nil.
func LatestFor(reports []*Report, store string) (*Report, *Store) {
	for i := len(reports) - 1; i >= 0; i-- {
		for j := range reports[i].Stores {
			if reports[i].Stores[j].Store == store {
				return reports[i], &reports[i].Stores[j]
			}
		}
	}
	return nil, nil
}
