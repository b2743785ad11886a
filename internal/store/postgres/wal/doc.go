// Package wal knows PostgreSQL's write-ahead log as files: LSNs, segment
// and timeline-history file names, the long page header at the start of
// every segment, and timeline history contents. It does no I/O beyond
// what it is handed, so the archive, the receiver and restore share one
// definition of "which segment holds this LSN".
package wal
