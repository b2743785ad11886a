// Package qdrant is the qdrant store kind: collection snapshots through
// Qdrant's REST API, streamed into the repository with the server's
// SHA-256 checked, and restored by streaming the snapshot back with
// POST /collections/{name}/snapshots/upload.
//
// The REST client here follows the OpenAPI document of Qdrant v1.19.0;
// the qdranttest package serves that API (with real tar snapshots) for the
// tests, which validate every request and response against the document.
// docs/qdrant.md covers distributed deployments: per-node snapshots and
// what they do and do not guarantee.
package qdrant
