// Package testenv gives linkdr's tests real servers: PostgreSQL (a primary with a streaming
// standby), Redis (standalone and a 6-node cluster), two S3 gateways (versitygw, a primary
// and a DR region), a Kubernetes API server with etcd, a BIND 9 DNS server accepting RFC 2136
// updates, and the command-line tools the project shells out to (age, zstd, pg_dump,
// pgbackrest, promtool, chromium, …).
//
// The shared servers are started by scripts/testenv.sh, which writes their addresses to
// .testenv/env at the module root. This package reads that file (the process environment
// wins over it, so CI or a developer can point a variable elsewhere) and hands the values to
// tests through getters such as [PostgresURL] and [S3]. A getter whose server is missing fails
// the test with a hint to run "scripts/testenv.sh up"; it never skips, because a skipped
// disaster-recovery test is a test that silently stopped protecting anything.
//
// Tests that need isolation get their own throwaway resources: a database on the shared
// primary ([NewDatabase]), a whole PostgreSQL cluster ([NewPostgres]), a Redis server
// ([NewRedis]), a bucket ([NewBucket]), a namespace ([NewNamespace]) or a DNS server
// ([NewDNS]). Each is removed by t.Cleanup.
//
// Nothing here sleeps for a fixed time: readiness is polled ([WaitFor], [Poll]).
//
// The package is imported from _test.go files only; it lives in non-test files so that
// every package's tests can use it.
package testenv
