// Package runbook runs a scenario of the plan: phases in order, each with
// a time budget, steps with timeouts, retries with backoff, failure
// policies (fail, continue, rollback), conditions and approval gates.
// Every event is appended to the run's journal before the engine moves
// on, so a crashed run resumes at the first unfinished step, and the
// journal is the run's timeline. A dry run checks every step's
// preconditions and changes nothing.
package runbook
