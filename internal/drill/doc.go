// Package drill runs DR drills and measures what the plan promises.
//
// A restore drill writes a canary record into each store, restores the
// store's latest backup into a scratch target, proves the restored data
// equal to the manifest's figures, compares those figures with the
// previous backup's (a table that silently lost its rows before the
// backup restores "correctly" and is still a disaster), runs the store's
// checks against the scratch copy, reports which canaries survived, and
// removes every scratch resource whatever happened. The measured RTO is
// the time to restore and validate; the measured RPO the age of the
// newest restorable data when the drill started. The report goes into the
// primary repository (drills/<id>.json).
//
// Store kinds plug in through Kind; postgres is built in. Due tells a
// scheduler which drills of the plan are due.
package drill
