// Package plan is the plan file (linkdr.yaml): its types, the defaults (in
// one place, Default), strict decoding that rejects unknown keys with their
// file:line, and validation that reports every problem at once with its
// path and a hint.
//
// The plan is the single source of truth for every command: objectives,
// repositories, stores and their schedules, retention. A typo must never
// silently change what gets protected, so nothing here is lenient.
package plan
