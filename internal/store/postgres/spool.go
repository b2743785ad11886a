package postgres

import (
	"errors"
	"io"
	"os"
	"sync"
)

// spool copies a stream into a temporary file while any number of
// followers read the file from its start, each at its own pace, waiting
// at the end of what has been written until more arrives. It lets several
// pg_restore processes start on a dump before it has finished arriving,
// and a final one use the complete file.
type spool struct {
	path string

	mu      sync.Mutex
	cond    *sync.Cond
	written int64
	done    bool
	err     error // set when filling failed; followers return it
}

func newSpool(dir string) (*spool, *os.File, error) {
	f, err := os.CreateTemp(dir, "linkdr-restore-*.dump")
	if err != nil {
		return nil, nil, err
	}
	s := &spool{path: f.Name()}
	s.cond = sync.NewCond(&s.mu)
	return s, f, nil
}

// fill copies r into f and closes f; it returns r's error, if any, after
// telling the followers.
func (s *spool) fill(f *os.File, r io.Reader) error {
	buf := make([]byte, 1<<20)
	var err error
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				err = werr
				break
			}
			s.mu.Lock()
			s.written += int64(n)
			s.cond.Broadcast()
			s.mu.Unlock()
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.mu.Lock()
	s.done, s.err = true, err
	s.cond.Broadcast()
	s.mu.Unlock()
	return err
}

// follow returns a reader of the spool from its start.
func (s *spool) follow() (io.ReadCloser, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	return &follower{s: s, f: f}, nil
}

func (s *spool) remove() { os.Remove(s.path) }

type follower struct {
	s      *spool
	f      *os.File
	off    int64
	closed bool
}

var errFollowerClosed = errors.New("spool follower closed")

func (fl *follower) Read(p []byte) (int, error) {
	s := fl.s
	s.mu.Lock()
	for s.written <= fl.off && !s.done && !fl.closed {
		s.cond.Wait()
	}
	avail, done, ferr, closed := s.written-fl.off, s.done, s.err, fl.closed
	s.mu.Unlock()
	switch {
	case closed:
		return 0, errFollowerClosed
	case avail <= 0 && done && ferr != nil:
		return 0, ferr
	case avail <= 0 && done:
		return 0, io.EOF
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	n, err := fl.f.ReadAt(p, fl.off)
	fl.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (fl *follower) Close() error {
	fl.s.mu.Lock()
	fl.closed = true
	fl.s.cond.Broadcast()
	fl.s.mu.Unlock()
	return fl.f.Close()
}
