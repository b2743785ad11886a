// Package journal keeps append-only JSONL event logs: runbook runs and
// incident timelines. The local copy (under the state directory) is
// written first and fsynced, line by line, under an exclusive lock held by
// the one process that drives the run; the repository copy
// (runs/<id>/journal.jsonl) is rewritten after every event, so a fresh
// machine with the repository can read, resume or report a run. Commands
// from other processes (approve, abort) are separate control objects, so
// a journal never has two writers.
package journal
