package redis

import (
	"strconv"
	"sync"
)

// Redis Cluster maps a key to one of 16384 slots by CRC16 (XMODEM) of the
// key, or of its hash tag: the part between the first "{" and the next
// "}", when not empty.
const numSlots = 16384

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crc16Table[byte(c>>8)^x]
	}
	return c
}

func keySlot(key []byte) int {
	for i, c := range key {
		if c == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					return int(crc16(key)) % numSlots
				}
			}
			break
		}
	}
	return int(crc16(key)) % numSlots
}

// slotTags gives, for every slot, a short hash tag that maps to it, so a
// scratch key can be put beside any key (verification compares values on
// the node that holds them).
var slotTags = sync.OnceValue(func() []string {
	tags := make([]string, numSlots)
	left := numSlots
	for i := 0; left > 0; i++ {
		t := strconv.Itoa(i)
		if s := int(crc16([]byte(t))) % numSlots; tags[s] == "" {
			tags[s] = t
			left--
		}
	}
	return tags
})

// scratchKey is a key in the same slot as key, named so that it is
// recognisably linkdr's should it ever be left behind.
func scratchKey(key []byte, suffix string) string {
	return "{" + slotTags()[keySlot(key)] + "}linkdr-verify-" + suffix
}
