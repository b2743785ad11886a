package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = AppendCommand(b, []byte("SELECT"), []byte("3"))
	b = AppendRestore(b, []byte("k\r\ney"), 1767225600000, []byte("\x00\x01x\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	b = AppendCommand(b, []byte("SET"), []byte(""), bytes.Repeat([]byte("v"), 3<<20))
	want := [][]string{
		{"SELECT", "3"},
		{"RESTORE", "k\r\ney", "1767225600000", "\x00\x01x\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00", "REPLACE", "ABSTTL"},
		{"SET", "", strings.Repeat("v", 3<<20)},
	}
	// One byte at a time exercises every boundary of the buffering.
	r := NewReader(iotest.OneByteReader(bytes.NewReader(b)))
	for i, w := range want {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if len(got) != len(w) {
			t.Fatalf("command %d: %d args, want %d", i, len(got), len(w))
		}
		for j := range w {
			if string(got[j]) != w[j] {
				t.Fatalf("command %d arg %d: got %q", i, j, clip(got[j]))
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
	if r.Offset() != int64(len(b)) {
		t.Fatalf("offset %d, want %d", r.Offset(), len(b))
	}
}

func TestErrors(t *testing.T) {
	cases := map[string]struct {
		in   string
		want error
	}{
		"truncated header":   {"*2\r\n$3\r\nGET\r\n$1", io.ErrUnexpectedEOF},
		"truncated bulk":     {"*1\r\n$5\r\nPI", io.ErrUnexpectedEOF},
		"missing crlf":       {"*1\r\n$4\r\nPINGxx", ErrProtocol},
		"inline command":     {"PING\r\n", ErrProtocol},
		"negative bulk":      {"*1\r\n$-1\r\n", ErrProtocol},
		"zero args":          {"*0\r\n", ErrProtocol},
		"huge bulk":          {"*1\r\n$99999999999\r\n", ErrProtocol},
		"not a number":       {"*x\r\n", ErrProtocol},
		"integer not bulk":   {"*1\r\n:1\r\n", ErrProtocol},
		"huge array, little": {"*1000000\r\n$1\r\na\r\n", io.ErrUnexpectedEOF},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(c.in)).Next()
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(AppendRestore(AppendCommand(nil, []byte("SELECT"), []byte("0")), []byte("k"), 0, []byte("payload"))))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*2\r\n$0\r\n\r\n$1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var out []byte
		for {
			args, err := r.Next()
			if err != nil {
				if err != io.EOF {
					return // malformed input is fine; only crashes and wrong output are not
				}
				break
			}
			out = AppendCommand(out, args...)
		}
		// Whatever parsed cleanly re-encodes to exactly the input.
		if !bytes.Equal(out, in) {
			// Lengths like "$03" parse but re-encode as "$3": only compare
			// when the input used canonical numbers.
			if canonical(in) {
				t.Fatalf("re-encoding differs:\n in %q\nout %q", in, out)
			}
		}
	})
}

func canonical(in []byte) bool {
	r := NewReader(bytes.NewReader(in))
	var out []byte
	for {
		args, err := r.Next()
		if err != nil {
			break
		}
		out = AppendCommand(out, args...)
	}
	return len(out) == len(in)
}
