// Package rdb reads just enough of Redis' RDB serialisation for linkdr to
// vouch for what it stores: the CRC-64 Redis uses (Jones polynomial), the
// trailer of a DUMP payload (RDB version and checksum), the value type a
// payload's first byte names, and the header and checksum of a whole RDB
// file as it streams past. It never decodes values: Redis itself does that
// on RESTORE or when it loads dump.rdb.
package rdb
