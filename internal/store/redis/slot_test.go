package redis

import "testing"

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	cases := map[string]int{
		"123456789":        12739,
		"foo":              12182,
		"{user1000}.a":     keySlot([]byte("user1000")),
		"foo{}{bar}":       keySlot([]byte("foo{}{bar}")),
		"foo{{bar}}zap":    keySlot([]byte("{bar")),
		"foo{bar}{zap}":    keySlot([]byte("bar")),
		"{}":               keySlot([]byte("{}")),
		"user:{42}:friend": keySlot([]byte("42")),
	}
	for k, want := range cases {
		if got := keySlot([]byte(k)); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", k, got, want)
		}
	}
	if got := int(crc16([]byte("123456789"))); got != 0x31C3 {
		t.Errorf("crc16 check value = %#x, want 0x31c3", got)
	}
	for _, k := range []string{"a", "user:{42}:x", "{}", "zzz"} {
		sk := scratchKey([]byte(k), "x")
		if keySlot([]byte(sk)) != keySlot([]byte(k)) {
			t.Errorf("scratchKey(%q) = %q is in another slot", k, sk)
		}
	}
}
