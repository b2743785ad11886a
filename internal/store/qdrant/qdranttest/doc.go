// Package qdranttest serves Qdrant's REST API for tests, because no
// Qdrant server can be installed on these machines. It follows the
// OpenAPI document of Qdrant v1.19.0 (testdata/openapi.json) for every
// endpoint linkdr uses — response envelope {result, status, time}, status
// codes, the multipart field "snapshot", wait, priority and checksum, API
// keys, error bodies with the server's message — and every request and
// response that passes through it is validated against that document
// (kin-openapi): a violation fails the test.
//
// Snapshots are real tar files laid out as Qdrant lays out a collection
// snapshot: config.json, version.info, payload_index.json and one
// directory per local shard holding the files of a real shard snapshot
// (testdata/test-shard.snapshot, taken from Qdrant). Point data, which
// real Qdrant keeps in binary segments, is in
// <shard>/segments/qdranttest/points.jsonl, so an uploaded snapshot
// restores exactly the points it was taken with.
//
// A Cluster of several nodes models a distributed deployment with one
// shard per node and replication factor 1: each node's snapshot holds
// only its own shard, counts are cluster-wide.
package qdranttest
