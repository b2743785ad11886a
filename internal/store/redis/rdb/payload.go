package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrPayload: a DUMP payload is too short or its checksum does not match.
var ErrPayload = errors.New("invalid DUMP payload")

// Payload describes a DUMP payload: <type byte> <value> <RDB version,
// 2 bytes LE> <CRC-64 of everything before, 8 bytes LE>.
type Payload struct {
	Type    byte
	Version int
}

// TypeName is the Redis type a payload holds.
func (p Payload) TypeName() string { return TypeName(p.Type) }

// ParsePayload reads a payload's trailer and, with check, proves its
// checksum (a zero checksum means the server had rdbchecksum off).
func ParsePayload[T string | []byte](b T, check bool) (Payload, error) {
	if len(b) < 11 {
		return Payload{}, fmt.Errorf("%w: %d bytes, need at least 11", ErrPayload, len(b))
	}
	n := len(b)
	p := Payload{Type: b[0], Version: int(b[n-10]) | int(b[n-9])<<8}
	if check {
		var trailer [8]byte
		copy(trailer[:], b[n-8:])
		want := binary.LittleEndian.Uint64(trailer[:])
		if want != 0 {
			if got := CRC64(0, []byte(b[:n-8])); got != want {
				return p, fmt.Errorf("%w: checksum %016x, trailer says %016x", ErrPayload, got, want)
			}
		}
	}
	return p, nil
}

// Value type bytes of RDB (the object's encoding decides which one a
// server writes, so one Redis type has several).
var typeNames = map[byte]string{
	0:  "string",
	1:  "list", // linked list
	2:  "set",
	3:  "zset",
	4:  "hash",
	5:  "zset",   // zset with binary scores
	6:  "module", // module value (old format)
	7:  "module",
	9:  "hash",   // zipmap
	10: "list",   // ziplist
	11: "set",    // intset
	12: "zset",   // ziplist
	13: "hash",   // ziplist
	14: "list",   // quicklist of ziplists
	15: "stream", // listpacks
	16: "hash",   // listpack
	17: "zset",   // listpack
	18: "list",   // quicklist of listpacks
	19: "stream", // listpacks, v2 (7.0)
	20: "set",    // listpack (7.2)
	21: "stream", // listpacks, v3 (7.2)
}

// TypeName maps an RDB value type byte to a Redis type name; unknown
// bytes (a newer Redis) read "type-<n>".
func TypeName(t byte) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type-%d", t)
}

// Types lists the Redis type names in a stable order.
var Types = []string{"string", "list", "set", "zset", "hash", "stream", "module"}
