// Package ops carries out the plan's operations on its stores — backup,
// verify, restore, status, retention — by tying together the plan, the
// repository and the store kinds. The CLI, the daemon, runbook steps and
// drills all call it, so an operation behaves the same however it was
// started: one writer per store (the lease), nothing visible until the
// manifest is written, everything undone on failure or interruption.
package ops
