// Package action implements the steps of a runbook: shell commands,
// Kubernetes changes (scale, patch, server-side apply, rollout wait,
// delete), DNS failover, restores, HTTP and named checks, notifications,
// approvals and waits. Each action checks its preconditions without side
// effects (for dry runs) and runs with parameters the engine has already
// expanded. The engine (internal/runbook) decides order, retries, time
// budgets and journaling; an action only does its one thing.
package action
