package envelope

import (
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameSize is the plaintext size of one zstd frame. Frames are
// compressed independently and concatenated (RFC 8878 allows any number of
// frames in a stream; `zstd -d` decodes them as one), so every core can
// compress a frame at once — a single zstd stream keeps one core busy.
// 4 MiB keeps the ratio within a fraction of a percent of one long frame
// (zstd -3 matches within 2 MiB anyway) and bounds memory: a frame per
// core in flight plus the one filling and the one being written, each
// with its output, and an encoder window per core — about 50 MiB live
// on two cores. (8 MiB frames put a 1 GiB dump's backup at 200 MiB RSS.)
const frameSize = 4 << 20

// outCap holds any frame's compressed form: zstd's worst case is the input
// plus a small fraction, so pooled output buffers never grow.
const outCap = frameSize + frameSize/128 + 4096

// frameWriter compresses its input in frameSize chunks on all cores and
// writes the frames in order.
type frameWriter struct {
	enc *zstd.Encoder
	out io.Writer
	buf []byte

	queue   chan chan frameResult // in write order
	done    chan struct{}
	mu      sync.Mutex
	err     error // first error of the writer goroutine
	pool    sync.Pool
	outPool sync.Pool
}

type frameResult struct {
	data []byte
	in   []byte // returned to the pool once written
}

func newFrameWriter(out io.Writer, level zstd.EncoderLevel) (*frameWriter, error) {
	workers := max(runtime.GOMAXPROCS(0), 1)
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(workers),
		zstd.WithWindowSize(frameSize),
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	w := &frameWriter{enc: enc, out: out, queue: make(chan chan frameResult, workers), done: make(chan struct{})}
	w.pool.New = func() any { b := make([]byte, 0, frameSize); return &b }
	w.outPool.New = func() any { b := make([]byte, 0, outCap); return &b }
	w.buf = w.getBuf()
	go w.writeLoop()
	return w, nil
}

func (w *frameWriter) writeLoop() {
	defer close(w.done)
	for res := range w.queue {
		r := <-res
		if w.failed() == nil {
			if _, err := w.out.Write(r.data); err != nil {
				w.fail(err)
			}
		}
		in, data := r.in[:0], r.data[:0]
		w.pool.Put(&in)
		if cap(data) >= outCap {
			w.outPool.Put(&data)
		}
	}
}

func (w *frameWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *frameWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// getBuf takes a chunk buffer from the pool (pointers avoid an
// allocation per Put).
func (w *frameWriter) getBuf() []byte { return *w.pool.Get().(*[]byte) }

// Write buffers p and hands full chunks to the compressors.
func (w *frameWriter) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		room := frameSize - len(w.buf)
		take := min(room, len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == frameSize {
			w.flush()
		}
	}
	return n, nil
}

// flush compresses the current chunk in the background. The queue's
// capacity bounds how many chunks are in flight.
func (w *frameWriter) flush() {
	in := w.buf
	w.buf = w.getBuf()
	res := make(chan frameResult, 1)
	w.queue <- res
	go func() {
		out := *w.outPool.Get().(*[]byte)
		res <- frameResult{data: w.enc.EncodeAll(in, out), in: in}
	}()
}

// Close compresses what is left and waits for every frame to be written.
func (w *frameWriter) Close() error {
	if len(w.buf) > 0 {
		w.flush()
	}
	close(w.queue)
	<-w.done
	w.enc.Close()
	return w.failed()
}
