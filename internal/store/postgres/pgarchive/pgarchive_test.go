package pgarchive

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// smallDump reads testdata/pg15-small.dump (described at TestScanPG15).
func smallDump(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/pg15-small.dump")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testdata/pg15-small.dump is `pg_dump -Fc -Z0` (PostgreSQL 15.18) of:
// public.users (5 rows, with an embedded newline in text), an empty table,
// and s.m with identity and generated columns (2 rows, one NULL, one
// backslash).
func TestScanPG15(t *testing.T) {
	b := smallDump(t)
	s, err := Scan(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if s.ArchiveVersion != "1.14.0" || s.Database != "t1" || s.Encoding != "UTF8" || s.Compressed {
		t.Fatalf("header: %+v", s)
	}
	want := map[string]struct {
		rows int64
		cols string
	}{
		"public.empty": {0, "(x)"},
		"public.users": {5, "(id, name, data, created)"},
		"s.m":          {2, "(id, t)"}, // generated column g is not dumped
	}
	if len(s.Tables) != len(want) {
		t.Fatalf("tables: %+v", s.Tables)
	}
	for _, tb := range s.Tables {
		w, ok := want[tb.Schema+"."+tb.Name]
		if !ok || tb.Rows != w.rows || tb.Columns != w.cols || !tb.Counted {
			t.Errorf("%s.%s: rows %d cols %q counted %v", tb.Schema, tb.Name, tb.Rows, tb.Columns, tb.Counted)
		}
	}
	// s.m's rows are "1\ta\\\\b" and "2\t\\N": the checksum is their hash sum.
	m := s.Tables[2]
	if want := RowSum(xxhash.Sum64String("1\ta\\\\b") + xxhash.Sum64String("2\t\\N")); m.Sum != want {
		t.Errorf("checksum of s.m = %016x, want %016x", uint64(m.Sum), uint64(want))
	}
}

func TestScanTruncated(t *testing.T) {
	b := smallDump(t)
	for _, n := range []int{3, 40, len(b) / 2, len(b) - 20} {
		if _, err := Scan(bytes.NewReader(b[:n])); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if _, err := Scan(bytes.NewReader([]byte("-- plain SQL dump\n"))); !errors.Is(err, ErrUnsupported) {
		t.Errorf("plain dump: %v", err)
	}
}

func TestRowHasherOrderIndependent(t *testing.T) {
	a, b := NewRowHasher(), NewRowHasher()
	a.Write([]byte("1\tx\n2\ty\n3\tz\n"))
	// Same rows, other order, split across writes in the middle of a row.
	b.Write([]byte("3\tz\n2\t"))
	b.Write([]byte("y\n1\tx\n"))
	ra, sa := a.Result()
	rb, sb := b.Result()
	if ra != 3 || rb != 3 || sa != sb {
		t.Fatalf("a=%d/%x b=%d/%x", ra, sa, rb, sb)
	}
	c := NewRowHasher()
	c.Write([]byte("1\tx\n2\ty\n3\tZ\n"))
	if _, sc := c.Result(); sc == sa {
		t.Fatal("different content, same checksum")
	}
}

func TestRowSumText(t *testing.T) {
	s := RowSum(0xfeedbeef)
	b, _ := s.MarshalText()
	var back RowSum
	if err := back.UnmarshalText(b); err != nil || back != s || string(b) != "00000000feedbeef" {
		t.Fatalf("%s → %x, %v", b, back, err)
	}
}

// TestCopy: the rewritten archive holds the same tables, rows and
// checksums in fewer chunks, and rewriting it again changes nothing.
// (pg_restore reading it is proven by the restore tests in package
// postgres, which restore archives written this way.)
func TestCopy(t *testing.T) {
	b := smallDump(t)
	var out bytes.Buffer
	s1, err := Copy(&out, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// 5 + 2 rows and 3 end markers were one chunk each (5 bytes of
	// length apiece); now every table is one chunk.
	if want := len(b) - (5+2+3-3)*5; out.Len() != want {
		t.Errorf("rewritten archive is %d bytes, want %d (original %d)", out.Len(), want, len(b))
	}
	s2, err := Scan(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Tables) != 3 || len(s2.Tables) != 3 {
		t.Fatalf("tables: %d, %d", len(s1.Tables), len(s2.Tables))
	}
	for i := range s1.Tables {
		if *s1.Tables[i] != *s2.Tables[i] {
			t.Errorf("table %d: %+v before, %+v after", i, *s1.Tables[i], *s2.Tables[i])
		}
	}
	var again bytes.Buffer
	if _, err := Copy(&again, bytes.NewReader(out.Bytes())); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Errorf("second rewrite changed the archive (%v)", err)
	}
	// Header and table of contents are copied byte for byte: the first
	// data block starts at the same offset.
	first := bytes.Index(b, []byte{blkData, 0})
	if first < 0 || !bytes.Equal(out.Bytes()[:first], b[:first]) {
		t.Error("header or table of contents changed")
	}
}

// TestCopyNotUnderstood: what Copy does not understand it passes on
// unchanged (and says so with ErrUnsupported); a truncated archive is an
// error of another kind, since the copy is incomplete.
func TestCopyNotUnderstood(t *testing.T) {
	plain := []byte("-- plain SQL dump\nSELECT 1;\n")
	var out bytes.Buffer
	if _, err := Copy(&out, bytes.NewReader(plain)); !errors.Is(err, ErrUnsupported) || !bytes.Equal(out.Bytes(), plain) {
		t.Errorf("plain dump: %v, copied %q", err, out.Bytes())
	}
	b := smallDump(t)
	odd := append([]byte(nil), b...)
	odd[5] = 9 // archive version 9.x
	out.Reset()
	if _, err := Copy(&out, bytes.NewReader(odd)); !errors.Is(err, ErrUnsupported) || !bytes.Equal(out.Bytes(), odd) {
		t.Errorf("unknown version: %v, copy equal: %v", err, bytes.Equal(out.Bytes(), odd))
	}
	out.Reset()
	if _, err := Copy(&out, bytes.NewReader(b[:len(b)-20])); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("truncated: %v", err)
	}
}

func TestChunker(t *testing.T) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	c := &chunker{out: w, intSize: 4, buf: make([]byte, 0, 10)}
	c.write([]byte("0123456"))
	c.write([]byte("789abcdefghij"))
	c.end()
	w.Flush()
	want := "\x00\x0a\x00\x00\x00" + "0123456789" + "\x00\x0a\x00\x00\x00" + "abcdefghij" + "\x00\x00\x00\x00\x00"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
}

func FuzzScan(f *testing.F) {
	b := smallDump(f)
	f.Add(b)
	f.Add(b[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		Scan(bytes.NewReader(data)) // must not panic or hang
		var out bytes.Buffer
		if _, err := Copy(&out, bytes.NewReader(data)); err != nil {
			return
		}
		// What Copy rewrote whole, Scan reads as the original.
		s1, err1 := Scan(bytes.NewReader(data))
		s2, err2 := Scan(bytes.NewReader(out.Bytes()))
		if (err1 == nil) != (err2 == nil) || (err1 == nil && len(s1.Tables) != len(s2.Tables)) {
			t.Fatalf("copy scans differently: %v / %v", err1, err2)
		}
	})
}

// TestReader walks the blocks of an archive: Head on its own is the
// header and table of contents, a block read only in part is skipped
// whole by Next, and a block read whole is the table's COPY text.
func TestReader(t *testing.T) {
	b := smallDump(t)
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Head, b[:len(r.Head)]) || len(r.TOC) != r.Entries {
		t.Fatalf("head of %d bytes, %d of %d TOC entries", len(r.Head), len(r.TOC), r.Entries)
	}
	data := map[int]string{}
	first := true
	for {
		id, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if first { // read three bytes and leave the rest to Next
			first = false
			p := make([]byte, 3)
			if _, err := io.ReadFull(r, p); err != nil {
				t.Fatal(err)
			}
			data[id] = "partial"
			continue
		}
		all, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		data[id] = string(all[:CopyEnd(all)])
	}
	s, _ := Scan(bytes.NewReader(b))
	if len(data) != len(s.Tables) {
		t.Fatalf("%d blocks, %d tables", len(data), len(s.Tables))
	}
	for _, tb := range s.Tables {
		got, ok := data[tb.DumpID]
		if !ok {
			t.Errorf("no block for %s", tb.Name)
			continue
		}
		if got == "partial" {
			continue
		}
		h := NewRowHasher()
		h.Write([]byte(got))
		if rows, sum := h.Result(); rows != tb.Rows || sum != tb.Sum || strings.Contains(got, "\\.\n") {
			t.Errorf("%s: %d rows %x from the block, scan says %d %x", tb.Name, rows, sum, tb.Rows, tb.Sum)
		}
	}
}

func TestCopyEnd(t *testing.T) {
	for in, want := range map[string]string{
		"1\ta\n2\tb\n\\.\n\n\n": "1\ta\n2\tb\n",
		"\\.\n\n":               "",
		"\n\n\\.\n\n":           "\n\n",       // two rows that are empty lines
		"x\t\\\\.\n":            "x\t\\\\.\n", // an escaped backslash before a dot is data
		"1\n2\n":                "1\n2\n",     // no marker: all data
	} {
		if got := in[:CopyEnd([]byte(in))]; got != want {
			t.Errorf("CopyEnd(%q) keeps %q, want %q", in, got, want)
		}
	}
}
