// Package drillreport is the drill report: what a drill did and measured,
// as stored in a repository under drills/<drill-id>.json (docs/format.md).
// It is its own package because three parts of linkdr read it — drills
// write it, backup checks read the last integrity result, reports chart
// it — and none of them should depend on the others.
package drillreport
