package envelope

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// nopCloser lets the plain pipeline share Sealer's Close order.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// SealPlain is Seal without the age stage: sha256 → zstd → dst. It is for
// data that holds no user content and must be readable without the
// private key (docs/format.md names every such artifact).
func SealPlain(dst io.Writer, level Level) (*Sealer, error) {
	s := &Sealer{plain: newCountingHash(), stored: newCountingHash()}
	zw, err := newFrameWriter(io.MultiWriter(dst, s.stored), level.encoderLevel())
	if err != nil {
		return nil, fmt.Errorf("seal: zstd: %w", err)
	}
	s.aw, s.zw = nopCloser{}, zw
	return s, nil
}

// OpenPlain reads what SealPlain wrote, checking sums like Open.
func OpenPlain(src io.Reader, expect *Sums) (*Opener, error) {
	o := &Opener{stored: newCountingHash(), plain: newCountingHash(), expect: expect}
	o.src = io.TeeReader(src, o.stored)
	zr, err := zstd.NewReader(o.src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("open: zstd: %w", err)
	}
	o.zr = zr
	return o, nil
}
