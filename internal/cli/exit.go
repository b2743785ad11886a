package cli

import (
	"context"
	"errors"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/journal"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/runbook"
	"github.com/linkapp/linkdr/internal/store"
)

// Exit codes. They are part of the interface: scripts and runbooks branch
// on them. Keep exitStatusHelp in sync.
const (
	ExitOK        = 0
	ExitFailure   = 1
	ExitUsage     = 2 // bad flags or arguments, invalid plan, unknown store or backup method
	ExitNoRepo    = 10
	ExitLocked    = 11
	ExitKey       = 12 // wrong or missing decryption key
	ExitIntegrity = 13 // checksum mismatch, damaged artifact, restored data differs
	// Runbook runs.
	ExitRunFailed        = 20 // a step failed (and was rolled back if its policy says so)
	ExitRunAborted       = 21 // aborted by a person
	ExitAwaitingApproval = 22 // paused at a gate: approve, then resume
	ExitInterrupted      = 130
	// ExitWALFatal: wal-fetch failed for another reason than a missing
	// file; above 125 so PostgreSQL aborts recovery instead of ending it.
	ExitWALFatal = 255
)

const exitStatusHelp = `EXIT STATUS
  0    success
  1    failure (see the message)
  2    usage error, invalid plan, unknown store or backup method, or a restore target that needs --force
  10   repository not found
  11   locked: another writer holds the store's lease (or another process drives the run)
  12   wrong or missing decryption key (age identity)
  13   integrity check failed: damaged artifact or restored data differs
  20   runbook run failed (a step failed; rolled back where the plan says so)
  21   runbook run aborted
  22   runbook run paused at a step that needs approval: approve it, then resume
  130  interrupted (Ctrl-C / SIGTERM); nothing partial was left visible
  255  wal-fetch only: any failure other than "not in the archive" (exit 1),
       so that PostgreSQL stops recovery rather than promote too early`

// usageError marks bad flags or arguments.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(msg string) error { return usageError{msg: msg} }

// exitCode decides the process exit status for an error. interrupted is
// true when a signal cancelled the run.
func exitCode(err error, interrupted bool) int {
	var ue usageError
	var wf walFatal
	var wm walMissing
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &wm):
		return ExitFailure
	case errors.As(err, &wf):
		return ExitWALFatal
	case interrupted || errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue), errors.Is(err, plan.ErrInvalid), errors.Is(err, ops.ErrUnknownStore), errors.Is(err, ops.ErrUnknownMethod), errors.Is(err, store.ErrTargetNotEmpty),
		errors.Is(err, runbook.ErrUnknownScenario), errors.Is(err, journal.ErrNotFound):
		return ExitUsage
	case errors.Is(err, runbook.ErrAwaitingApproval):
		return ExitAwaitingApproval
	case errors.Is(err, runbook.ErrAborted):
		return ExitRunAborted
	case errors.Is(err, runbook.ErrFailed):
		return ExitRunFailed
	case errors.Is(err, journal.ErrBusy):
		return ExitLocked
	case errors.Is(err, repo.ErrNotFound):
		return ExitNoRepo
	case errors.Is(err, repo.ErrLocked):
		return ExitLocked
	case errors.Is(err, envelope.ErrWrongKey):
		return ExitKey
	case errors.Is(err, envelope.ErrIntegrity), errors.Is(err, store.ErrMismatch), errors.Is(err, ops.ErrWALGap), errors.Is(err, store.ErrIncomplete):
		return ExitIntegrity
	default:
		return ExitFailure
	}
}
