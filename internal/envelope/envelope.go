package envelope

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// Sentinel errors. They are checked with errors.Is by callers that decide
// exit codes.
var (
	// ErrWrongKey means no supplied identity can decrypt the artifact, or no
	// identity was supplied at all.
	ErrWrongKey = errors.New("no identity matches the artifact's recipients")
	// ErrIntegrity means the stored bytes or the decoded plaintext do not
	// match their recorded size or SHA-256, or the ciphertext is damaged or
	// truncated (age authenticates every chunk).
	ErrIntegrity = errors.New("integrity check failed")
)

// Sums describes one artifact on both sides of the pipeline.
type Sums struct {
	PlainSize    int64  `json:"plain_size"`
	PlainSHA256  string `json:"plain_sha256"`
	StoredSize   int64  `json:"stored_size"`
	StoredSHA256 string `json:"stored_sha256"`
}

// Level is a zstd compression level, 1 (fastest) to 4 (best), mapped onto
// klauspost/compress's encoder levels. Zero means the default (2, comparable
// to `zstd -3`).
type Level int

func (l Level) encoderLevel() zstd.EncoderLevel {
	switch l {
	case 1:
		return zstd.SpeedFastest
	case 3:
		return zstd.SpeedBetterCompression
	case 4:
		return zstd.SpeedBestCompression
	default:
		return zstd.SpeedDefault
	}
}

// countingHash counts and hashes everything written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

func newCountingHash() *countingHash { return &countingHash{h: sha256.New()} }

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *countingHash) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// Sealer is the write side of the pipeline. Write plaintext to it; Close
// flushes every stage. Sums is valid after a successful Close.
type Sealer struct {
	plain  *countingHash
	stored *countingHash
	zw     *frameWriter
	aw     io.WriteCloser
	closed bool
	sums   Sums

	// For SealCompressed: the input is already zstd; a goroutine decodes
	// a copy only to hash the plaintext.
	pw      *io.PipeWriter
	decoded chan error
}

// SealCompressed returns a Sealer whose input is already a zstd stream
// (standard frames, e.g. from a server that compresses its own output):
// it is encrypted as it is, so the stored object has exactly the format
// Seal writes, and decoded on the side only to hash and count the
// plaintext. A stream that does not decode fails Close.
func SealCompressed(dst io.Writer, recipients []age.Recipient) (*Sealer, error) {
	if len(recipients) == 0 {
		return nil, errors.New("seal: no age recipients: set encryption.recipients in the plan")
	}
	s := &Sealer{plain: newCountingHash(), stored: newCountingHash(), decoded: make(chan error, 1)}
	aw, err := age.Encrypt(io.MultiWriter(dst, s.stored), recipients...)
	if err != nil {
		return nil, fmt.Errorf("seal: age: %w", err)
	}
	s.aw = aw
	pr, pw := io.Pipe()
	s.pw = pw
	go func() {
		dec, err := zstd.NewReader(pr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(1<<30))
		if err == nil {
			_, err = io.Copy(s.plain, dec)
			dec.Close()
		}
		pr.CloseWithError(err) // unblock the writer if decoding failed early
		s.decoded <- err
	}()
	return s, nil
}

// Seal returns a Sealer that writes the sealed form of its input to dst.
// dst is not closed.
func Seal(dst io.Writer, recipients []age.Recipient, level Level) (*Sealer, error) {
	if len(recipients) == 0 {
		return nil, errors.New("seal: no age recipients: set encryption.recipients in the plan")
	}
	s := &Sealer{plain: newCountingHash(), stored: newCountingHash()}
	aw, err := age.Encrypt(io.MultiWriter(dst, s.stored), recipients...)
	if err != nil {
		return nil, fmt.Errorf("seal: age: %w", err)
	}
	zw, err := newFrameWriter(aw, level.encoderLevel())
	if err != nil {
		return nil, fmt.Errorf("seal: zstd: %w", err)
	}
	s.aw, s.zw = aw, zw
	return s, nil
}

// Write hashes p and hands it to the compressor.
func (s *Sealer) Write(p []byte) (int, error) {
	if s.pw != nil {
		if _, err := s.aw.Write(p); err != nil {
			return 0, err
		}
		if _, err := s.pw.Write(p); err != nil {
			return 0, fmt.Errorf("seal: input is not valid zstd: %w", err)
		}
		return len(p), nil
	}
	s.plain.Write(p)
	return s.zw.Write(p)
}

// ReadFrom copies r through the pipeline with large buffers.
func (s *Sealer) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	return io.CopyBuffer(struct{ io.Writer }{s}, r, buf)
}

// Close flushes the compressor and the encryption, in that order.
func (s *Sealer) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.pw != nil {
		s.pw.Close()
		if err := <-s.decoded; err != nil {
			s.aw.Close()
			return fmt.Errorf("seal: input is not valid zstd: %w", err)
		}
	} else if err := s.zw.Close(); err != nil {
		s.aw.Close()
		return fmt.Errorf("seal: zstd: %w", err)
	}
	if err := s.aw.Close(); err != nil {
		return fmt.Errorf("seal: age: %w", err)
	}
	s.sums = Sums{
		PlainSize:    s.plain.n,
		PlainSHA256:  s.plain.sum(),
		StoredSize:   s.stored.n,
		StoredSHA256: s.stored.sum(),
	}
	return nil
}

// Sums reports sizes and hashes; only meaningful after Close returned nil.
func (s *Sealer) Sums() Sums { return s.sums }

// Opener is the read side: it reads a sealed stream and yields plaintext.
// When the stream ends it checks sizes and hashes against the expected
// Sums, if any, and reports a mismatch as ErrIntegrity instead of io.EOF.
type Opener struct {
	src    io.Reader // src teed into stored
	stored *countingHash
	plain  *countingHash
	zr     *zstd.Decoder
	expect *Sums
	done   bool
	err    error
}

// Open starts decoding src. expect may be nil (no comparison, but age still
// authenticates every chunk). The caller must Close the Opener.
func Open(src io.Reader, identities []age.Identity, expect *Sums) (*Opener, error) {
	if len(identities) == 0 {
		return nil, fmt.Errorf("open: %w: no identity given (set encryption.identity_file or LINKDR_AGE_IDENTITY_FILE)", ErrWrongKey)
	}
	o := &Opener{stored: newCountingHash(), plain: newCountingHash(), expect: expect}
	o.src = io.TeeReader(src, o.stored)
	ar, err := age.Decrypt(o.src, identities...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return nil, fmt.Errorf("open: %w", ErrWrongKey)
		}
		return nil, fmt.Errorf("open: %w: age header: %v", ErrIntegrity, err)
	}
	zr, err := zstd.NewReader(ar, zstd.WithDecoderConcurrency(2), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("open: zstd: %w", err)
	}
	o.zr = zr
	return o, nil
}

// Read returns plaintext. Any damage to the stored bytes surfaces here as
// ErrIntegrity, at the latest when the end of the stream is reached.
func (o *Opener) Read(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.zr.Read(p)
	o.plain.Write(p[:n])
	switch {
	case err == io.EOF:
		o.err = o.finish()
		return n, o.err
	case err != nil:
		o.err = fmt.Errorf("%w: decode: %v", ErrIntegrity, err)
		return n, o.err
	}
	return n, nil
}

// WriteTo streams the plaintext to w with the decoder's own buffers.
func (o *Opener) WriteTo(w io.Writer) (int64, error) {
	var total int64
	buf := make([]byte, 256<<10)
	for {
		n, err := o.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// finish runs once at the end of the plaintext: age must also be at its
// end (its final chunk authenticated), then sizes and hashes are compared.
func (o *Opener) finish() error {
	o.done = true
	// Anything after age's final chunk is not ours; counting it makes the
	// stored size comparison catch it.
	if _, err := io.Copy(io.Discard, o.src); err != nil {
		return fmt.Errorf("%w: read trailing bytes: %v", ErrIntegrity, err)
	}
	if o.expect == nil {
		return io.EOF
	}
	got := o.Sums()
	switch {
	case got.StoredSize != o.expect.StoredSize:
		return fmt.Errorf("%w: stored size %d, manifest says %d", ErrIntegrity, got.StoredSize, o.expect.StoredSize)
	case got.StoredSHA256 != o.expect.StoredSHA256:
		return fmt.Errorf("%w: stored sha256 %s, manifest says %s", ErrIntegrity, got.StoredSHA256, o.expect.StoredSHA256)
	case got.PlainSize != o.expect.PlainSize:
		return fmt.Errorf("%w: plaintext size %d, manifest says %d", ErrIntegrity, got.PlainSize, o.expect.PlainSize)
	case got.PlainSHA256 != o.expect.PlainSHA256:
		return fmt.Errorf("%w: plaintext sha256 %s, manifest says %s", ErrIntegrity, got.PlainSHA256, o.expect.PlainSHA256)
	}
	return io.EOF
}

// Sums reports what has been read so far; complete once Read returned io.EOF.
func (o *Opener) Sums() Sums {
	return Sums{
		PlainSize:    o.plain.n,
		PlainSHA256:  o.plain.sum(),
		StoredSize:   o.stored.n,
		StoredSHA256: o.stored.sum(),
	}
}

// Close releases the decoder's goroutines.
func (o *Opener) Close() error {
	if o.zr != nil {
		o.zr.Close()
	}
	return nil
}
