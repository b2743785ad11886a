// Package report builds the posture report (`linkdr report`: objectives
// against measured RTO and RPO per store and scenario over time, the drill
// trend, failed checks, backup freshness) and the report of one drill, as
// data (JSON) and as render documents (Markdown, self-contained HTML).
// It only arranges what the repository and the checks already say.
package report
