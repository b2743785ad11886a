// Package cli is linkdr's command line: one file per command group, flag
// parsing and output only. The work happens in ops (and the packages it
// drives); exit codes are decided in one place, exitCode in exit.go.
package cli
