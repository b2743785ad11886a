// Package check runs the plan's validation probes — http, tls, dns, tcp,
// postgres, redis, qdrant, prometheus, backup, kubernetes — and evaluates
// each check's condition (an expr-lang expression) over what the probe
// observed. Checks run in parallel, each bounded by its timeout; a
// checklist is a named list of checks.
//
// Runbook steps, drills and the CLI all call Run (or Runner.Run), so a
// check means the same thing wherever it runs. Drills redirect the checks
// that name a store to their scratch copy with Runner.StoreURL.
package check
