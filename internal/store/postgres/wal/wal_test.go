package wal

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind Kind
		tli  uint32
		seg  uint64
	}{
		{"000000010000000000000003", Segment, 1, 3},
		{"0000000200000001000000FF", Segment, 2, 256 + 255},
		{"000000010000000000000003.partial", Partial, 1, 3},
		{"00000002.history", History, 2, 0},
		{"000000010000000000000003.00000028.backup", BackupLabel, 1, 3},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseName(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if n.Kind != tc.kind || n.Timeline != tc.tli || (tc.kind != History && n.SegNo(DefaultSegmentSize) != tc.seg) {
				t.Fatalf("got %+v", n)
			}
			if n.String() != tc.in {
				t.Fatalf("round trip: %s", n)
			}
		})
	}
	for _, bad := range []string{"", "RECOVERYXLOG", "00000001000000000000003", "0000000100000000000000zz", "00000001.historyx", "archive_status"} {
		if _, err := ParseName(bad); !errors.Is(err, ErrNotWAL) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestLSN(t *testing.T) {
	l, err := ParseLSN("16/B374D848")
	if err != nil || l != 0x16B374D848 || l.String() != "16/B374D848" {
		t.Fatalf("%v %v", l, err)
	}
	for _, bad := range []string{"", "1", "/1", "x/1", "1/123456789"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	const seg = DefaultSegmentSize
	if n := SegmentName(1, SegNoOf(0x16B374D848, seg), seg); n.String() != "0000000100000016000000B3" {
		t.Fatalf("segment of 16/B374D848: %s", n)
	}
	// 64 MiB segments: 64 per "log", so the names differ.
	if n := SegmentName(1, SegNoOf(0x100000000, 64<<20), 64<<20); n.String() != "000000010000000100000000" {
		t.Fatalf("64MiB: %s", n)
	}
}

func TestSegmentHeader(t *testing.T) {
	b := make([]byte, 8192)
	le := binary.LittleEndian
	le.PutUint16(b[0:], 0xD110)
	le.PutUint16(b[2:], xlpLongHeader)
	le.PutUint32(b[4:], 1)
	le.PutUint64(b[8:], 3*DefaultSegmentSize)
	le.PutUint64(b[24:], 7312345678901234567)
	le.PutUint32(b[32:], DefaultSegmentSize)
	le.PutUint32(b[36:], 8192)
	h, err := ReadSegmentHeader(b)
	if err != nil || h.SystemIdentifier != 7312345678901234567 {
		t.Fatalf("%+v %v", h, err)
	}
	n, _ := ParseName("000000010000000000000003")
	if err := h.Check(n); err != nil {
		t.Fatal(err)
	}
	n4, _ := ParseName("000000010000000000000004")
	if err := h.Check(n4); err == nil {
		t.Fatal("wrong position accepted")
	}
	if _, err := ReadSegmentHeader(make([]byte, 8192)); !errors.Is(err, ErrNoHeader) {
		t.Fatalf("zeros: %v", err)
	}
}

func TestParseHistory(t *testing.T) {
	h, err := ParseHistory([]byte("1\t0/3000000\tno recovery target specified\n\n2\t0/5000060\tbefore 2026-11-26 06:00:00+00\n"))
	if err != nil || len(h) != 2 || h[1].Timeline != 2 || h[1].LSN != 0x5000060 {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := ParseHistory([]byte("2\t0/3000000\tx\n1\t0/4000000\ty\n")); err == nil {
		t.Fatal("decreasing timelines accepted")
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"000000010000000000000003", "00000002.history", "000000010000000000000003.partial", "000000010000000000000003.00000028.backup"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		if n.String() != s {
			t.Fatalf("%q parsed to %q", s, n)
		}
	})
}

func FuzzParseHistory(f *testing.F) {
	f.Add([]byte("1\t0/3000000\tno recovery target specified\n"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseHistory(b) })
}
