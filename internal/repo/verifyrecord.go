package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// VerifyRecord is verify/<store>.json: the last verification of a store's
// newest backup in this repository, so the posture (and the daemon after
// a restart) knows how fresh the proof of restorability is.
type VerifyRecord struct {
	Store  string    `json:"store"`
	Backup string    `json:"backup"`
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Error  string    `json:"error,omitempty"`
	// LastSuccess survives later failures.
	LastSuccess       time.Time `json:"last_success,omitzero"`
	LastSuccessBackup string    `json:"last_success_backup,omitempty"`
	Tool              Tool      `json:"tool"`
}

func verifyKey(store string) string { return "verify/" + store + ".json" }

// VerifyRecord reads a store's record; nil when it was never verified.
func (r *Repo) VerifyRecord(ctx context.Context, store string) (*VerifyRecord, error) {
	b, err := r.readAll(ctx, verifyKey(store))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read verification record of %s: %w", store, err)
	}
	var v VerifyRecord
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("verification record of %s is not valid JSON: %v", store, err)
	}
	return &v, nil
}

// RecordVerification stores the outcome of verifying backup of store,
// keeping the time of the last success across failures.
func (r *Repo) RecordVerification(ctx context.Context, store, backup string, at time.Time, verr error) (*VerifyRecord, error) {
	prev, err := r.VerifyRecord(ctx, store)
	if err != nil {
		prev = nil // an unreadable record is replaced
	}
	rec := VerifyRecord{Store: store, Backup: backup, At: at.UTC(), OK: verr == nil, Tool: tool()}
	if prev != nil {
		rec.LastSuccess, rec.LastSuccessBackup = prev.LastSuccess, prev.LastSuccessBackup
	}
	if verr != nil {
		rec.Error = verr.Error()
	} else {
		rec.LastSuccess, rec.LastSuccessBackup = rec.At, backup
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := r.writeAll(ctx, verifyKey(store), b, false); err != nil {
		return nil, fmt.Errorf("write verification record of %s: %w", store, err)
	}
	return &rec, nil
}
