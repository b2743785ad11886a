package pgarchive

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Reader reads an archive one data block at a time, for a restore that
// loads table data itself instead of through pg_restore.
type Reader struct {
	// Summary describes the archive; its TOC is complete, its row figures
	// are not filled in.
	*Summary
	// Head is the archive's header and table of contents, byte for byte:
	// on its own it is a valid archive without data, from which
	// pg_restore restores the schema (pre-data and post-data sections).
	Head []byte

	rd      *reader
	left    int  // bytes left in the current chunk
	inBlock bool // inside a data block
}

// NewReader reads the header and the table of contents from r. When it
// fails, the Reader it returns still holds what was read in Head and the
// rest in Rest, so the archive can be handed on whole to another reader.
func NewReader(r io.Reader) (*Reader, error) {
	var head bytes.Buffer
	hw := bufio.NewWriter(&head)
	br := bufio.NewReaderSize(r, 256<<10)
	rd, s, _, err := readHead(br, hw)
	hw.Flush()
	if rd == nil {
		rd = &reader{r: br}
	}
	rd.echo = nil
	return &Reader{Summary: s, Head: head.Bytes(), rd: rd}, err
}

// Rest reads what follows what has been read so far.
func (r *Reader) Rest() io.Reader { return r.rd.r }

// Next moves to the next block and returns the TOC id of its entry; it
// returns io.EOF after the last one. Only table data blocks (not large
// objects) are supported. An unread rest of the current block is skipped.
func (r *Reader) Next() (int, error) {
	if r.inBlock {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return 0, err
		}
	}
	typ, err := r.rd.r.ReadByte()
	if err == io.EOF {
		return 0, io.EOF
	}
	if err != nil {
		return 0, fmt.Errorf("read archive: %w", err)
	}
	id := r.rd.int()
	if r.rd.err != nil {
		return 0, r.rd.err
	}
	if typ != blkData {
		return 0, fmt.Errorf("%w: block type %d (only table data can be read block by block)", ErrUnsupported, typ)
	}
	r.inBlock, r.left = true, 0
	return id, nil
}

// Read reads the current block's data; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if !r.inBlock {
		return 0, io.EOF
	}
	for r.left == 0 {
		n := r.rd.int()
		if r.rd.err != nil {
			return 0, r.rd.err
		}
		if n <= 0 {
			r.inBlock = false
			return 0, io.EOF
		}
		r.left = n
	}
	n, err := r.rd.r.Read(p[:min(len(p), r.left)])
	r.left -= n
	if err != nil {
		return n, fmt.Errorf("read archive: %w", noEOF(err))
	}
	return n, nil
}

// CopyEnd returns where the COPY text of a block ends: before the `\.`
// line pg_dump writes after the last row, and the empty lines after that
// (rows themselves can be empty lines, so they must not simply be
// trimmed). tail must be the end of the block's data, long enough to hold
// the marker and its padding; without a marker the whole tail is data.
func CopyEnd(tail []byte) int {
	i := len(tail)
	for i > 0 && tail[i-1] == '\n' {
		i--
	}
	if i >= 2 && tail[i-1] == '.' && tail[i-2] == '\\' && (i == 2 || tail[i-3] == '\n') {
		return i - 2
	}
	return len(tail)
}
