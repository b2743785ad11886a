// Package schedule decides when the daemon's jobs run: cron activations
// with jitter, never two runs of one group (one store) at a time, and one
// catch-up run for activations missed while the daemon was down or the
// store was busy. Scheduler is pure — it is given the time and reads no
// clock — so its rules are tested with plain values; Loop is the thin
// actor that runs it against a Clock.
package schedule
