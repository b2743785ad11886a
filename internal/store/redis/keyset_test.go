package redis

import (
	"strconv"
	"testing"
)

func TestKeySet(t *testing.T) {
	var s keySet
	for i := range 100000 {
		if !s.add(hashKey("k" + strconv.Itoa(i))) {
			t.Fatalf("key %d reported as seen", i)
		}
	}
	for i := range 100000 {
		if s.add(hashKey([]byte("k" + strconv.Itoa(i)))) {
			t.Fatalf("key %d reported as new the second time", i)
		}
	}
	if !s.add(0) || s.add(0) {
		t.Fatal("hash 0 not handled")
	}
}
