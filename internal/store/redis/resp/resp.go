// Package resp reads and writes streams of Redis commands in RESP, the
// form `redis-cli --pipe` sends: each command an array of bulk strings
// (`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n`). linkdr's Redis artifacts are
// such streams, so the reader is strict (no inline commands, no other
// types) and bounded (no allocation larger than what was actually read).
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrProtocol: the stream is not a well-formed sequence of commands.
var ErrProtocol = errors.New("malformed RESP command stream")

// Limits Redis applies by default (proto-max-bulk-len, and far more
// arguments than any command linkdr writes).
const (
	MaxBulk = 512 << 20
	MaxArgs = 1 << 20
)

// Reader reads commands one at a time.
type Reader struct {
	br   *bufio.Reader
	off  int64 // bytes consumed
	args [][]byte
	ends []int // end offsets of the arguments in buf
	buf  []byte
}

// NewReader reads commands from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 256<<10)}
}

// Offset is the number of bytes consumed so far; in an error it locates
// the damage.
func (r *Reader) Offset() int64 { return r.off }

// Next reads one command. The arguments share a buffer that the next call
// reuses: copy what must outlive it. At the clean end of the stream it
// returns io.EOF; a stream that ends inside a command is
// io.ErrUnexpectedEOF, anything else malformed wraps ErrProtocol.
func (r *Reader) Next() ([][]byte, error) {
	start := r.off
	n, err := r.header('*')
	if err != nil {
		if err == io.EOF && r.off == start {
			return nil, io.EOF
		}
		return nil, r.wrap(start, err)
	}
	if n < 1 || n > MaxArgs {
		return nil, r.wrap(start, fmt.Errorf("%w: array of %d arguments", ErrProtocol, n))
	}
	r.buf = r.buf[:0]
	// Offsets, not slices: buf may move while it grows.
	r.ends = r.ends[:0]
	for range n {
		size, err := r.header('$')
		if err != nil {
			return nil, r.wrap(start, err)
		}
		if size < 0 || size > MaxBulk {
			return nil, r.wrap(start, fmt.Errorf("%w: bulk string of %d bytes", ErrProtocol, size))
		}
		if err := r.readBulk(int(size)); err != nil {
			return nil, r.wrap(start, err)
		}
		r.ends = append(r.ends, len(r.buf))
	}
	r.args = r.args[:0]
	prev := 0
	for _, e := range r.ends {
		r.args = append(r.args, r.buf[prev:e:e])
		prev = e
	}
	return r.args, nil
}

func (r *Reader) wrap(start int64, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("command at byte %d: %w", start, err)
}

// header reads "<prefix><integer>\r\n".
func (r *Reader) header(prefix byte) (int64, error) {
	line, err := r.br.ReadSlice('\n')
	r.off += int64(len(line))
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 0, fmt.Errorf("%w: header line too long", ErrProtocol)
		}
		if err == io.EOF && len(line) > 0 {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	if len(line) < 4 || line[0] != prefix || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("%w: want %q header, got %q", ErrProtocol, prefix, clip(line))
	}
	v, err := strconv.ParseInt(string(line[1:len(line)-2]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad length in %q", ErrProtocol, clip(line))
	}
	return v, nil
}

// readBulk appends size bytes and consumes the CRLF after them, growing
// the buffer only as data arrives.
func (r *Reader) readBulk(size int) error {
	for size > 0 {
		chunk := min(size, 1<<20)
		if cap(r.buf)-len(r.buf) < chunk {
			nb := make([]byte, len(r.buf), max(2*cap(r.buf), len(r.buf)+chunk))
			copy(nb, r.buf)
			r.buf = nb
		}
		n, err := io.ReadFull(r.br, r.buf[len(r.buf):len(r.buf)+chunk])
		r.buf = r.buf[:len(r.buf)+n]
		r.off += int64(n)
		if err != nil {
			return io.ErrUnexpectedEOF
		}
		size -= chunk
	}
	var crlf [2]byte
	n, err := io.ReadFull(r.br, crlf[:])
	r.off += int64(n)
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	if crlf != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: bulk string not followed by CRLF", ErrProtocol)
	}
	return nil
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// AppendCommand appends one command in RESP to dst.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendBulk appends one bulk string.
func AppendBulk[T string | []byte](dst []byte, b T) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendRestore appends `RESTORE key ttl payload REPLACE ABSTTL`: ttl is
// the absolute expiry in Unix milliseconds, 0 for none.
func AppendRestore[T string | []byte](dst []byte, key T, expireAtMs int64, payload T) []byte {
	dst = append(dst, "*6\r\n$7\r\nRESTORE\r\n"...)
	dst = AppendBulk(dst, key)
	var num [20]byte
	dst = AppendBulk(dst, strconv.AppendInt(num[:0], expireAtMs, 10))
	dst = AppendBulk(dst, payload)
	return append(dst, "$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"...)
}
