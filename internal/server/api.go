package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/daemon"
	"github.com/linkapp/linkdr/internal/leader"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/schedule"
)

// Status is GET /api/v1/status.
type Status struct {
	Name       string               `json:"name"`
	Version    string               `json:"version"`
	Now        time.Time            `json:"now"`
	Ready      bool                 `json:"ready"`
	ReadyError string               `json:"ready_error,omitempty"`
	Leader     leader.Observation   `json:"leader"`
	Posture    *ops.Posture         `json:"posture"`
	Jobs       []schedule.JobStatus `json:"jobs,omitempty"`
	Runs       []daemon.RunRecord   `json:"runs,omitempty"`
}

const statusRuns = 50

func (s *server) snapshot() Status {
	st := Status{Name: s.Name, Version: s.Version, Now: s.Now(), Leader: s.Backend.Observe(), Posture: s.Backend.Posture(), Jobs: s.Backend.Jobs()}
	if err := s.Backend.Ready(); err != nil {
		st.ReadyError = err.Error()
	} else {
		st.Ready = true
	}
	runs := s.Backend.Runs()
	if len(runs) > statusRuns {
		runs = runs[:statusRuns]
	}
	st.Runs = runs
	return st
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshot())
}

// GET /api/v1/backups?store=S&repository=R lists complete backups,
// oldest first.
func (s *server) backups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list, err := s.Backend.Backups(r.Context(), q.Get("repository"), q.Get("store"))
	if err != nil {
		writeError(w, errorCode(err), err.Error())
		return
	}
	if list == nil {
		list = []*repo.Manifest{}
	}
	writeJSON(w, http.StatusOK, list)
}

// GET /api/v1/backups/{id} (an id, unique prefix, or STORE/ID).
func (s *server) backup(w http.ResponseWriter, r *http.Request) {
	m, err := s.Backend.Backup(r.Context(), r.URL.Query().Get("repository"), r.PathValue("ref"))
	if err != nil {
		writeError(w, errorCode(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// TriggerRequest is the body of POST /api/v1/backups.
type TriggerRequest struct {
	Store  string `json:"store"`
	Method string `json:"method,omitempty"`
	// Wait for the backup to finish and return its manifest.
	Wait bool `json:"wait,omitempty"`
}

// POST /api/v1/backups starts a backup on the leader: 202 with the job,
// or with "wait": 201 and the manifest (or 500 and the error).
func (s *server) trigger(w http.ResponseWriter, r *http.Request) {
	var req TriggerRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Store == "" {
		msg := `body must be JSON like {"store": "users-db", "method": "logical", "wait": true}`
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	res, err := s.Backend.TriggerBackup(r.Context(), req.Store, req.Method, req.Wait)
	switch {
	case errors.Is(err, daemon.ErrNotLeader):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "leader": s.Backend.Observe().Leader})
	case errors.Is(err, daemon.ErrUnknownStore):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, schedule.ErrBusy):
		writeError(w, http.StatusConflict, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case !req.Wait:
		writeJSON(w, http.StatusAccepted, res)
	case res.Error != "":
		writeJSON(w, http.StatusInternalServerError, res)
	default:
		writeJSON(w, http.StatusCreated, res)
	}
}

func errorCode(err error) int {
	switch {
	case errors.Is(err, repo.ErrNoBackup), errors.Is(err, ops.ErrUnknownStore), strings.Contains(err.Error(), "no repository"):
		return http.StatusNotFound
	case strings.Contains(err.Error(), "ambiguous"):
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}
