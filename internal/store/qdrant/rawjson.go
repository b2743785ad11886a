package qdrant

import (
	"bytes"
	"encoding/json"
)

// RawJSON is a JSON value kept as received. It marshals as itself (null
// when empty), so a manifest round-trips it unchanged.
type RawJSON = json.RawMessage

// sameJSON compares two JSON values semantically (key order, spacing).
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
