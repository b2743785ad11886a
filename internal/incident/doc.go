// Package incident keeps incident records: a journal per incident (opened,
// status updates, notifications, runs that joined, resolution) whose
// timeline merges the events of its runbook runs, the messages that keep
// people informed at the plan's cadence, and the post-mortem draft.
package incident
