// Package pgarchive reads pg_dump's custom archive format (-Fc) as it
// streams past, without seeking, to learn what a dump holds: the table
// data entries, and for each table its exact row count and an
// order-independent checksum of its rows. Because the numbers come from the
// dump's own bytes they describe exactly the snapshot pg_dump took, at no
// cost to the database server.
//
// The same RowSum is computed over `COPY … TO STDOUT` from a restored
// database, so a restore can be proven equal to its backup table by table.
//
// Only uncompressed archives (pg_dump -Z0, which linkdr always uses: it
// compresses the stream itself) carry readable table data; for others the
// table list is still returned, without counts.
package pgarchive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// ErrUnsupported: the archive is not a custom-format dump this package
// understands (unknown version, or not -Fc).
var ErrUnsupported = errors.New("unsupported pg_dump archive")

// Archive versions (major, minor) from pg_backup_archiver.h.
const (
	vers1_12 = 1<<16 | 12<<8 // PG 9.5..
	vers1_14 = 1<<16 | 14<<8 // PG 12..15: table access method
	vers1_15 = 1<<16 | 15<<8 // PG 16: compression algorithm byte
	vers1_16 = 1<<16 | 16<<8 // PG 17: relkind in TOC entries
)

// Block types of the custom format.
const (
	blkData  = 1
	blkBlobs = 3
)

// Table is one TABLE DATA entry of a dump.
type Table struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	// Columns is the column list pg_dump copied, e.g. "(id, name)"; the
	// same list must be used when checking a restored table.
	Columns string `json:"columns"`
	// Rows and Sum are exact for uncompressed archives.
	Rows  int64  `json:"rows"`
	Sum   RowSum `json:"checksum"`
	Bytes int64  `json:"bytes"`
	// Counted is false when the data could not be read (compressed dump).
	Counted bool `json:"counted"`
	// DumpID is the entry's id in the archive's table of contents (as
	// `pg_restore --list` prints it).
	DumpID int `json:"dump_id"`
}

// Summary is what Scan learned of one archive.
type Summary struct {
	ArchiveVersion string   `json:"archive_version"`
	Database       string   `json:"database"`
	ServerVersion  string   `json:"server_version"`
	DumpVersion    string   `json:"dump_version"`
	Encoding       string   `json:"encoding,omitempty"`
	Compressed     bool     `json:"compressed"`
	Entries        int      `json:"toc_entries"`
	Tables         []*Table `json:"tables"`
	LargeObjects   int      `json:"large_objects"`
	// TOC is the whole table of contents, in archive order.
	TOC []Entry `json:"-"`
}

// Entry is one entry of the table of contents.
type Entry struct {
	ID        int
	Desc      string // "TABLE", "TABLE DATA", "INDEX", "ENCODING", …
	Section   int    // SectionPreData, SectionData, SectionPostData (0: none)
	Namespace string
	Tag       string
	Defn      string // SQL that creates the object or sets the setting
	CopyStmt  string // for TABLE DATA: "COPY s.t (a, b) FROM stdin;\n"
	Deps      []int  // IDs of the entries this one depends on
}

// Sections of the table of contents (pg_backup.h).
const (
	SectionPreData  = 2
	SectionData     = 3
	SectionPostData = 4
)

type reader struct {
	r *bufio.Reader
	// echo, when set, receives every byte read: the header and table of
	// contents pass through Copy unchanged this way.
	echo    *bufio.Writer
	version int
	intSize int
	offSize int
	err     error
}

func (rd *reader) fail(format string, args ...any) {
	if rd.err == nil {
		rd.err = fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
	}
}

func (rd *reader) byte() byte {
	if rd.err != nil {
		return 0
	}
	b, err := rd.r.ReadByte()
	if err != nil {
		rd.err = fmt.Errorf("read archive: %w", noEOF(err))
	}
	if rd.echo != nil && err == nil {
		rd.echo.WriteByte(b)
	}
	return b
}

// int reads pg_dump's integer: a sign byte, then intSize bytes, LSB first.
func (rd *reader) int() int {
	sign := rd.byte()
	var v uint64
	for i := 0; i < rd.intSize; i++ {
		v |= uint64(rd.byte()) << (8 * i)
	}
	if rd.err != nil {
		return 0
	}
	if v > 1<<31 {
		rd.fail("integer out of range")
		return 0
	}
	if sign != 0 {
		return -int(v)
	}
	return int(v)
}

// str reads a length-prefixed string; ok is false for SQL NULL (length -1).
func (rd *reader) str() (s string, ok bool) {
	n := rd.int()
	if rd.err != nil || n < 0 {
		return "", false
	}
	if n > 64<<20 {
		rd.fail("string of %d bytes", n)
		return "", false
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd.r, b); err != nil {
		rd.err = fmt.Errorf("read archive: %w", noEOF(err))
		return "", false
	}
	if rd.echo != nil {
		rd.echo.Write(b)
	}
	return string(b), true
}

func (rd *reader) skip(n int) {
	if rd.err != nil {
		return
	}
	if rd.echo != nil {
		if _, err := io.CopyN(rd.echo, rd.r, int64(n)); err != nil {
			rd.err = fmt.Errorf("read archive: %w", noEOF(err))
		}
		return
	}
	if _, err := rd.r.Discard(n); err != nil {
		rd.err = fmt.Errorf("read archive: %w", noEOF(err))
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Scan reads a whole archive from r. It reads r to its end even when the
// archive is not understood, so it can sit in the middle of a pipe.
func Scan(r io.Reader) (*Summary, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	s, err := scan(br, nil)
	if _, derr := io.Copy(io.Discard, br); derr != nil && err == nil {
		err = derr
	}
	return s, err
}

// ChunkSize is the size of the data chunks Copy writes.
const ChunkSize = 1 << 20

// Copy reads an archive from src, as Scan does, and writes it to dst with
// the table data of an uncompressed archive in chunks of ChunkSize.
//
// pg_dump -Z0 frames every row as a chunk of its own behind a 5-byte
// length: for small rows that is 3 % of the archive, and since the lengths
// look random to a compressor they cost about 5 % of the compressed size.
// pg_restore reads chunks of any size (decompressing a compressed archive
// yields arbitrary ones), so the result restores exactly as the original.
// Everything else, the header and table of contents included, is copied
// byte for byte.
//
// An error wrapping ErrUnsupported means the figures are missing but dst
// still received the whole archive (from the point where it was not
// understood on, unchanged). Any other error means dst is incomplete.
func Copy(dst io.Writer, src io.Reader) (*Summary, error) {
	br := bufio.NewReaderSize(src, 256<<10)
	out := bufio.NewWriterSize(dst, 256<<10)
	s, err := scan(br, out)
	if err == nil || errors.Is(err, ErrUnsupported) {
		if _, cerr := io.Copy(out, br); cerr != nil {
			return s, cerr
		}
	} else if _, derr := io.Copy(io.Discard, br); derr != nil {
		err = derr // drain, so whoever writes the other end sees no broken pipe
	}
	if ferr := out.Flush(); ferr != nil {
		return s, ferr
	}
	return s, err
}

// scan parses an archive; with out set it also writes it there (see Copy).
func scan(br *bufio.Reader, out *bufio.Writer) (*Summary, error) {
	rd, s, byID, err := readHead(br, out)
	if err != nil {
		return s, err
	}
	// Chunks are rewritten only when they hold plain COPY text; compressed
	// streams pass through as pg_dump cut them.
	var ch *chunker
	if out != nil && !s.Compressed {
		ch = &chunker{out: out, intSize: rd.intSize, buf: make([]byte, 0, ChunkSize)}
	}
	for rd.err == nil {
		typ, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return s, err
		}
		if out != nil {
			out.WriteByte(typ)
		}
		id := rd.int()
		switch typ {
		case blkData:
			t := byID[id]
			var sum *rowHasher
			if t != nil && !s.Compressed {
				sum = &rowHasher{}
			}
			readChunks(rd, sum, ch)
			if sum != nil {
				t.Rows, t.Sum, t.Bytes, t.Counted = sum.finish()
			}
		case blkBlobs:
			for rd.err == nil {
				oid := rd.int()
				if oid == 0 {
					break
				}
				s.LargeObjects++
				readChunks(rd, nil, ch)
			}
		default:
			rd.fail("unknown block type %d", typ)
		}
	}
	return s, rd.err
}

// readHead reads the header and the table of contents.
func readHead(br *bufio.Reader, out *bufio.Writer) (*reader, *Summary, map[int]*Table, error) {
	rd := &reader{r: br, echo: out}
	magic := make([]byte, 5)
	if n, err := io.ReadFull(br, magic); err != nil || string(magic) != "PGDMP" {
		if out != nil {
			out.Write(magic[:n])
		}
		return nil, nil, nil, fmt.Errorf("%w: not a custom-format archive (no PGDMP magic)", ErrUnsupported)
	}
	if out != nil {
		out.Write(magic)
	}
	vmaj, vmin, vrev := rd.byte(), rd.byte(), rd.byte()
	rd.version = int(vmaj)<<16 | int(vmin)<<8 | int(vrev)
	rd.intSize, rd.offSize = int(rd.byte()), int(rd.byte())
	format := rd.byte()
	if rd.err != nil {
		return nil, nil, nil, rd.err
	}
	if rd.version < vers1_12 || rd.version >= vers1_16+1<<8 {
		return nil, nil, nil, fmt.Errorf("%w: archive version %d.%d", ErrUnsupported, vmaj, vmin)
	}
	if rd.intSize < 4 || rd.intSize > 8 || rd.offSize < 4 || rd.offSize > 8 || format != 1 {
		return nil, nil, nil, fmt.Errorf("%w: int size %d, offset size %d, format %d", ErrUnsupported, rd.intSize, rd.offSize, format)
	}
	s := &Summary{ArchiveVersion: fmt.Sprintf("%d.%d.%d", vmaj, vmin, vrev)}
	if rd.version >= vers1_15 {
		s.Compressed = rd.byte() != 0 // compression algorithm, 0 = none
	} else {
		s.Compressed = rd.int() != 0 // compression level
	}
	for i := 0; i < 7; i++ { // creation time: sec, min, hour, mday, mon, year, isdst
		rd.int()
	}
	s.Database, _ = rd.str()
	s.ServerVersion, _ = rd.str()
	s.DumpVersion, _ = rd.str()

	n := rd.int()
	byID := map[int]*Table{}
	for i := 0; i < n && rd.err == nil; i++ {
		readTocEntry(rd, s, byID)
	}
	s.Entries = n
	return rd, s, byID, rd.err
}

// chunker collects data into chunks of up to cap(buf) bytes.
type chunker struct {
	out     *bufio.Writer
	intSize int
	buf     []byte
}

func (c *chunker) write(p []byte) {
	for len(p) > 0 {
		n := copy(c.buf[len(c.buf):cap(c.buf)], p)
		c.buf = c.buf[:len(c.buf)+n]
		p = p[n:]
		if len(c.buf) == cap(c.buf) {
			c.flush()
		}
	}
}

func (c *chunker) flush() {
	if len(c.buf) == 0 {
		return
	}
	writeInt(c.out, c.intSize, len(c.buf))
	c.out.Write(c.buf)
	c.buf = c.buf[:0]
}

// end writes the pending chunk and the zero length that ends a block.
func (c *chunker) end() {
	c.flush()
	writeInt(c.out, c.intSize, 0)
}

// writeInt writes pg_dump's integer format (see reader.int).
func writeInt(w *bufio.Writer, size, v int) {
	sign := byte(0)
	if v < 0 {
		sign, v = 1, -v
	}
	w.WriteByte(sign)
	for i := 0; i < size; i++ {
		w.WriteByte(byte(v >> (8 * i)))
	}
}

func readTocEntry(rd *reader, s *Summary, byID map[int]*Table) {
	id := rd.int()
	rd.int()           // hadDumper
	rd.str()           // table oid
	rd.str()           // oid
	tag, _ := rd.str() // object name
	desc, _ := rd.str()
	section := rd.int()
	defn, _ := rd.str() // definition
	rd.str()            // drop statement
	copyStmt, _ := rd.str()
	namespace, _ := rd.str()
	rd.str() // tablespace
	if rd.version >= vers1_14 {
		rd.str() // table access method
	}
	if rd.version >= vers1_16 {
		rd.int() // relkind
	}
	rd.str() // owner
	rd.str() // "with oids", always false
	var deps []int
	for rd.err == nil {
		d, ok := rd.str()
		if !ok {
			break // dependency list ends with NULL
		}
		if n, err := strconv.Atoi(d); err == nil {
			deps = append(deps, n)
		}
	}
	rd.byte() // data state
	rd.skip(rd.offSize)
	if rd.err != nil {
		return
	}
	s.TOC = append(s.TOC, Entry{ID: id, Desc: desc, Section: section, Namespace: namespace, Tag: tag, Defn: defn, CopyStmt: copyStmt, Deps: deps})
	switch desc {
	case "TABLE DATA":
		t := &Table{Schema: namespace, Name: tag, Columns: columnsOf(copyStmt), DumpID: id}
		s.Tables = append(s.Tables, t)
		byID[id] = t
	case "ENCODING":
		// defn is "SET client_encoding = 'UTF8';"
		if i := bytes.IndexByte([]byte(defn), '\''); i >= 0 {
			if j := bytes.IndexByte([]byte(defn[i+1:]), '\''); j >= 0 {
				s.Encoding = defn[i+1 : i+1+j]
			}
		}
	}
}

// columnsOf extracts "(a, b)" from "COPY s.t (a, b) FROM stdin;".
func columnsOf(copyStmt string) string {
	i := bytes.IndexByte([]byte(copyStmt), '(')
	j := bytes.LastIndex([]byte(copyStmt), []byte(") FROM stdin"))
	if i < 0 || j < i {
		return ""
	}
	return copyStmt[i : j+1]
}

// readChunks consumes length-prefixed chunks up to the zero-length one,
// feeding their bytes to h and, when rewriting, to ch instead of echoing
// them as they were.
func readChunks(rd *reader, h *rowHasher, ch *chunker) {
	if ch != nil {
		echo := rd.echo
		rd.echo = nil
		defer func() {
			rd.echo = echo
			if rd.err == nil {
				ch.end()
			}
		}()
	}
	for rd.err == nil {
		n := rd.int()
		if n <= 0 {
			return
		}
		if h == nil && ch == nil {
			rd.skip(n)
			continue
		}
		for n > 0 && rd.err == nil {
			b, err := rd.r.Peek(min(n, rd.r.Size()))
			if err != nil && len(b) == 0 {
				rd.err = fmt.Errorf("read archive: %w", noEOF(err))
				return
			}
			if h != nil {
				h.Write(b)
			}
			if ch != nil {
				ch.write(b)
			}
			rd.r.Discard(len(b))
			n -= len(b)
		}
	}
}

// RowSum is an order-independent checksum of a table's rows: the sum,
// modulo 2^64, of the xxHash64 of every row in COPY text format. Rows can
// come back in any order after a restore; the sum does not care.
type RowSum uint64

// MarshalText prints the sum as 16 hex digits.
func (s RowSum) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%016x", uint64(s))), nil }

// UnmarshalText parses 16 hex digits.
func (s *RowSum) UnmarshalText(b []byte) error {
	var v uint64
	if _, err := fmt.Sscanf(string(b), "%x", &v); err != nil {
		return fmt.Errorf("invalid row checksum %q", b)
	}
	*s = RowSum(v)
	return nil
}

// rowHasher turns a stream of COPY text into a row count and RowSum.
// COPY text escapes newlines inside values, so every '\n' ends a row.
type rowHasher struct {
	ended   bool // saw the "\\." end-of-data line; pg_dump pads after it
	partial []byte
	rows    int64
	sum     uint64
	bytes   int64
}

// NewRowHasher returns a writer that counts and checksums COPY text.
func NewRowHasher() interface {
	io.Writer
	Result() (rows int64, sum RowSum)
} {
	return &rowHasher{}
}

func (h *rowHasher) Write(p []byte) (int, error) {
	h.bytes += int64(len(p))
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			h.partial = append(h.partial, p...)
			break
		}
		if len(h.partial) > 0 {
			h.partial = append(h.partial, p[:i]...)
			h.row(h.partial)
			h.partial = h.partial[:0]
		} else {
			h.row(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

func (h *rowHasher) row(line []byte) {
	if h.ended {
		return
	}
	if len(line) == 2 && line[0] == '\\' && line[1] == '.' {
		h.ended = true // end-of-data marker of COPY text, not a row
		return
	}
	h.rows++
	h.sum += xxhash.Sum64(line)
}

func (h *rowHasher) finish() (int64, RowSum, int64, bool) {
	if len(h.partial) > 0 { // a last row without newline
		h.row(h.partial)
		h.partial = nil
	}
	return h.rows, RowSum(h.sum), h.bytes, true
}

func (h *rowHasher) Result() (int64, RowSum) {
	rows, sum, _, _ := h.finish()
	return rows, sum
}
