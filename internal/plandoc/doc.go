// Package plandoc writes the human DR plan from the plan file: objectives,
// architecture, scenarios with their runbooks and budgets, communication,
// drills, the validation checklist with the checks behind each item,
// contacts, and the latest measured RTO and RPO — so the document people
// read in an incident is always the one the program runs.
package plandoc
