package redis

import "github.com/cespare/xxhash/v2"

// keySet remembers which keys were seen, as 64-bit hashes in an
// open-addressing table (about 16 bytes per key). Two different keys
// with the same hash would count as one — with 100 million keys the odds
// are about 1 in 3,700 — so it is used only for counting, never to decide
// whether a key is written.
type keySet struct {
	slots   []uint64 // 0 = empty; the hash 0 is kept in hasZero
	n       int
	hasZero bool
}

func hashKey[T string | []byte](k T) uint64 {
	switch k := any(k).(type) {
	case string:
		return xxhash.Sum64String(k)
	case []byte:
		return xxhash.Sum64(k)
	}
	panic("unreachable")
}

// add reports whether h was new.
func (s *keySet) add(h uint64) bool {
	if h == 0 {
		if s.hasZero {
			return false
		}
		s.hasZero = true
		return true
	}
	if len(s.slots) == 0 || (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *keySet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(1024, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}
