package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrFile: an RDB file is malformed, truncated or fails its checksum.
var ErrFile = errors.New("invalid RDB file")

// File is what a Checker learned about an RDB file.
type File struct {
	// Version is the RDB format version of the header (REDIS0010 → 10).
	Version int
	// Aux holds the header's auxiliary fields (redis-ver, ctime, used-mem…).
	Aux  map[string]string
	Size int64
	// Checksum is the CRC-64 trailer; 0 when the server had rdbchecksum off.
	Checksum uint64
}

// Created is the header's ctime: when the server started writing the
// snapshot (second precision), or zero.
func (f *File) Created() time.Time {
	s, err := strconv.ParseInt(f.Aux["ctime"], 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

const headKeep = 64 << 10 // the header's aux fields are far smaller

// Checker follows an RDB file written through it: it keeps the first
// bytes for the header and the CRC-64 of everything but the 8-byte
// trailer, so a stream is checked as it passes without being held.
type Checker struct {
	crc     uint64
	n       int64
	pending [8]byte // the last bytes seen, not yet in the CRC
	npend   int
	last    byte // the last byte that went into the CRC
	head    []byte
}

// Write never fails.
func (c *Checker) Write(p []byte) (int, error) {
	if room := headKeep - len(c.head); room > 0 {
		c.head = append(c.head, p[:min(room, len(p))]...)
	}
	c.n += int64(len(p))
	if c.npend+len(p) <= 8 {
		c.npend += copy(c.pending[c.npend:], p)
		return len(p), nil
	}
	// Everything but the newest 8 bytes goes into the CRC.
	var buf [16]byte
	all := append(buf[:0], c.pending[:c.npend]...)
	if len(p) >= 8 {
		c.feed(all)
		c.feed(p[:len(p)-8])
		c.npend = copy(c.pending[:], p[len(p)-8:])
		return len(p), nil
	}
	all = append(all, p...)
	c.feed(all[:len(all)-8])
	c.npend = copy(c.pending[:], all[len(all)-8:])
	return len(p), nil
}

func (c *Checker) feed(b []byte) {
	if len(b) > 0 {
		c.crc = CRC64(c.crc, b)
		c.last = b[len(b)-1]
	}
}

// Size is the number of bytes written so far.
func (c *Checker) Size() int64 { return c.n }

// Result parses the header and proves the trailer: the last byte before
// it must be the EOF opcode and the CRC-64 must match (unless 0).
func (c *Checker) Result() (*File, error) {
	f, err := ParseHeader(c.head)
	if err != nil {
		return nil, err
	}
	f.Size = c.n
	if c.npend < 8 || c.n < 9+8 {
		return f, fmt.Errorf("%w: truncated (%d bytes)", ErrFile, c.n)
	}
	if c.last != opEOF {
		return f, fmt.Errorf("%w: no EOF marker before the checksum (truncated or damaged)", ErrFile)
	}
	f.Checksum = binary.LittleEndian.Uint64(c.pending[:])
	if f.Checksum != 0 && f.Checksum != c.crc {
		return f, fmt.Errorf("%w: checksum %016x, trailer says %016x", ErrFile, c.crc, f.Checksum)
	}
	return f, nil
}

// RDB opcodes that can appear in the header.
const (
	opAux = 0xFA
	opEOF = 0xFF
)

// ParseHeader reads the magic, the version and the auxiliary fields from
// the start of an RDB file.
func ParseHeader(b []byte) (*File, error) {
	if len(b) < 9 || string(b[:5]) != "REDIS" {
		return nil, fmt.Errorf("%w: does not start with REDIS<version>", ErrFile)
	}
	v, err := strconv.Atoi(string(b[5:9]))
	if err != nil || v < 1 {
		return nil, fmt.Errorf("%w: bad version %q", ErrFile, b[5:9])
	}
	if v < 5 {
		// Before version 5 (Redis 2.6) files had no checksum trailer.
		return nil, fmt.Errorf("%w: RDB version %d (Redis before 2.6) is not supported", ErrFile, v)
	}
	f := &File{Version: v, Aux: map[string]string{}}
	r := byteReader{b: b[9:]}
	for r.more() && r.peek() == opAux {
		r.next()
		k, err1 := r.str()
		val, err2 := r.str()
		if err := errors.Join(err1, err2); err != nil {
			return f, fmt.Errorf("%w: header: %v", ErrFile, err)
		}
		f.Aux[k] = val
	}
	return f, nil
}

type byteReader struct {
	b []byte
	i int
}

var errShort = errors.New("unexpected end of header")

func (r *byteReader) more() bool { return r.i < len(r.b) }
func (r *byteReader) peek() byte { return r.b[r.i] }
func (r *byteReader) next() byte { r.i++; return r.b[r.i-1] }

func (r *byteReader) take(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.i < n {
		return nil, errShort
	}
	r.i += n
	return r.b[r.i-n : r.i], nil
}

// length reads RDB's length encoding; special reports the 0b11 forms
// (integers and LZF strings), whose kind is returned as the length.
func (r *byteReader) length() (n uint64, special bool, err error) {
	if !r.more() {
		return 0, false, errShort
	}
	b := r.next()
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		x, err := r.take(1)
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(x[0]), false, nil
	case 2:
		switch b {
		case 0x80:
			x, err := r.take(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(x)), false, nil
		case 0x81:
			x, err := r.take(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(x), false, nil
		}
		return 0, false, fmt.Errorf("unknown length encoding %#x", b)
	}
	return uint64(b & 0x3f), true, nil
}

// str reads a string: plain, an encoded integer, or (not decoded here) LZF.
func (r *byteReader) str() (string, error) {
	n, special, err := r.length()
	if err != nil {
		return "", err
	}
	if !special {
		if n > uint64(len(r.b)) {
			return "", errShort
		}
		x, err := r.take(int(n))
		return string(x), err
	}
	switch n {
	case 0:
		x, err := r.take(1)
		if err != nil {
			return "", err
		}
		return strconv.Itoa(int(int8(x[0]))), nil
	case 1:
		x, err := r.take(2)
		if err != nil {
			return "", err
		}
		return strconv.Itoa(int(int16(binary.LittleEndian.Uint16(x)))), nil
	case 2:
		x, err := r.take(4)
		if err != nil {
			return "", err
		}
		return strconv.Itoa(int(int32(binary.LittleEndian.Uint32(x)))), nil
	case 3:
		clen, _, err := r.length()
		if err != nil {
			return "", err
		}
		if _, _, err := r.length(); err != nil {
			return "", err
		}
		if clen > uint64(len(r.b)) {
			return "", errShort
		}
		_, err = r.take(int(clen))
		return "<lzf-compressed>", err
	}
	return "", fmt.Errorf("unknown string encoding %d", n)
}

// VersionFor is the RDB version a Redis server version writes and the
// newest it can read: 7.0 → 10, 7.2 → 11, 7.4 and later → 12,
// 5.0–6.2 → 9, 4.0 → 8, 3.2 → 7, 2.6–3.0 → 6. ok is false for a version
// string it cannot parse.
func VersionFor(redisVersion string) (v int, ok bool) {
	parts := strings.SplitN(strings.TrimSpace(redisVersion), ".", 3)
	if len(parts) < 2 {
		return 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, false
	}
	switch {
	case major > 7 || major == 7 && minor >= 4:
		return 12, true
	case major == 7 && minor >= 2:
		return 11, true
	case major == 7:
		return 10, true
	case major >= 5:
		return 9, true
	case major == 4:
		return 8, true
	case major == 3 && minor >= 2:
		return 7, true
	case major >= 2:
		return 6, true
	}
	return 0, false
}

// ReleaseFor is the first Redis release that writes RDB version v.
func ReleaseFor(v int) string {
	switch {
	case v >= 12:
		return "7.4"
	case v == 11:
		return "7.2"
	case v == 10:
		return "7.0"
	case v == 9:
		return "5.0"
	case v == 8:
		return "4.0"
	case v == 7:
		return "3.2"
	}
	return "2.6"
}
