package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Event is one line of a journal. Fields are optional by type; Data
// carries what does not fit (results, snapshots).
type Event struct {
	Seq      int            `json:"seq"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Phase    string         `json:"phase,omitempty"`
	Step     string         `json:"step,omitempty"`
	Action   string         `json:"action,omitempty"`
	Attempt  int            `json:"attempt,omitempty"`
	Status   string         `json:"status,omitempty"`
	Message  string         `json:"message,omitempty"`
	Error    string         `json:"error,omitempty"`
	By       string         `json:"by,omitempty"`
	Duration float64        `json:"duration_s,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
}

// Errors.
var (
	ErrNotFound = errors.New("no such run or incident")
	ErrBusy     = errors.New("another linkdr process is driving this run")
)

// Store is where journals live: a local state directory and, optionally,
// a repository bucket mirrored after every append.
type Store struct {
	Dir    string
	Mirror *blob.Bucket
}

func key(id, name string) string { return "runs/" + id + "/" + name }

func (s *Store) dir(id string) string { return filepath.Join(s.Dir, "runs", id) }

// Journal is an open journal with its writer lock.
type Journal struct {
	ID    string
	store *Store
	f     *os.File
	lock  *os.File

	mu        sync.Mutex
	seq       int
	buf       bytes.Buffer
	mirrorErr error
}

// Create starts a new journal.
func (s *Store) Create(id string) (*Journal, error) {
	if err := os.MkdirAll(s.dir(id), 0o750); err != nil {
		return nil, fmt.Errorf("journal %s: %w", id, err)
	}
	return s.open(id, nil)
}

// Open reopens a journal to append to it (resume, update). When the local
// copy is missing, the repository's is fetched first.
func (s *Store) Open(ctx context.Context, id string) (*Journal, []Event, error) {
	events, err := s.Read(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(s.dir(id), 0o750); err != nil {
		return nil, nil, err
	}
	j, err := s.open(id, events)
	if err != nil {
		return nil, nil, err
	}
	return j, events, nil
}

func (s *Store) open(id string, events []Event) (*Journal, error) {
	lock, err := os.OpenFile(filepath.Join(s.dir(id), "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", id, err)
	}
	// flock dies with the process: a kill -9 leaves no stale lock.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w %s (%v)", ErrBusy, id, err)
	}
	path := filepath.Join(s.dir(id), "journal.jsonl")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && len(events) > 0 {
		// Fetched from the repository: lay the local copy down first.
		var b bytes.Buffer
		for _, e := range events {
			line, _ := json.Marshal(e)
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
			lock.Close()
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("journal %s: %w", id, err)
	}
	j := &Journal{ID: id, store: s, f: f, lock: lock}
	if b, err := os.ReadFile(path); err == nil {
		j.buf.Write(b)
	}
	for _, e := range events {
		j.seq = max(j.seq, e.Seq)
	}
	if len(events) == 0 {
		if evs, err := parse(j.buf.Bytes()); err == nil && len(evs) > 0 {
			j.seq = evs[len(evs)-1].Seq
		}
	}
	return j, nil
}

// Append writes an event: locally (fsynced) first, then to the mirror. A
// mirror failure does not fail the append — a recovery must not stop
// because the primary region's repository is down — and is reported by
// MirrorErr until a later append succeeds.
func (j *Journal) Append(ctx context.Context, e Event) (Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	e.Seq = j.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	line, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	line = append(line, '\n')
	if _, err := j.f.Write(line); err != nil {
		return e, fmt.Errorf("journal %s: %w", j.ID, err)
	}
	if err := j.f.Sync(); err != nil {
		return e, fmt.Errorf("journal %s: %w", j.ID, err)
	}
	j.buf.Write(line)
	j.mirrorErr = j.mirror(ctx)
	return e, nil
}

func (j *Journal) mirror(ctx context.Context) error {
	if j.store.Mirror == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return j.store.Mirror.WriteAll(ctx, key(j.ID, "journal.jsonl"), j.buf.Bytes(), &blob.WriterOptions{ContentType: "application/x-ndjson"})
}

// MirrorErr is the last mirror failure, or nil.
func (j *Journal) MirrorErr() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mirrorErr
}

// Close releases the file and the lock.
func (j *Journal) Close() error {
	err := j.f.Close()
	j.lock.Close()
	return err
}

// Read returns a journal's events: the local copy, or the repository's
// when there is none here. A torn last line (a crash mid-write) is
// ignored.
func (s *Store) Read(ctx context.Context, id string) ([]Event, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(id), "journal.jsonl"))
	if errors.Is(err, fs.ErrNotExist) && s.Mirror != nil {
		b, err = s.Mirror.ReadAll(ctx, key(id, "journal.jsonl"))
		if gcerrors.Code(err) == gcerrors.NotFound {
			err = fs.ErrNotExist
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read journal %s: %w", id, err)
	}
	return parse(b)
}

func parse(b []byte) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			if !bytes.HasSuffix(b, []byte("\n")) || n == bytes.Count(b, []byte("\n"))+1 {
				break // torn final line
			}
			return nil, fmt.Errorf("journal line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Busy reports whether a process holds the journal's writer lock.
func (s *Store) Busy(id string) bool {
	f, err := os.OpenFile(filepath.Join(s.dir(id), "lock"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// List returns the ids of journals here and in the repository, sorted.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	seen := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(s.Dir, "runs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			if _, err := os.Stat(filepath.Join(s.dir(e.Name()), "journal.jsonl")); err == nil {
				seen[e.Name()] = true
			}
		}
	}
	if s.Mirror != nil {
		it := s.Mirror.List(&blob.ListOptions{Prefix: "runs/" + prefix, Delimiter: "/"})
		for {
			obj, err := it.Next(ctx)
			if err != nil {
				break // io.EOF, or the repository is unreachable: list what is here
			}
			if obj.IsDir {
				seen[strings.TrimSuffix(strings.TrimPrefix(obj.Key, "runs/"), "/")] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// Resolve finds the one id starting with ref.
func (s *Store) Resolve(ctx context.Context, ref, prefix string) (string, error) {
	ids, err := s.List(ctx, prefix)
	if err != nil {
		return "", err
	}
	var match []string
	for _, id := range ids {
		if id == ref {
			return id, nil
		}
		if strings.HasPrefix(id, ref) || strings.HasPrefix(id, prefix+ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("%w: %q", ErrNotFound, ref)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%q is ambiguous: %s", ref, strings.Join(match, ", "))
}

// Control is a command for the process driving a journal.
type Control struct {
	Name    string    `json:"name"` // approve-<step> or abort
	By      string    `json:"by"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
}

// WriteControl records a command locally and in the repository, so the
// driving process sees it wherever it runs.
func (s *Store) WriteControl(ctx context.Context, id string, c Control) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.dir(id), "control")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+c.Name+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, c.Name+".json")); err != nil {
		return err
	}
	if s.Mirror != nil {
		if err := s.Mirror.WriteAll(ctx, key(id, "control/"+c.Name+".json"), b, nil); err != nil {
			return fmt.Errorf("write %s to the repository: %w", c.Name, err)
		}
	}
	return nil
}

// Controls reads the commands recorded for a journal.
func (s *Store) Controls(ctx context.Context, id string) map[string]Control {
	out := map[string]Control{}
	add := func(b []byte) {
		var c Control
		if json.Unmarshal(b, &c) == nil && c.Name != "" {
			out[c.Name] = c
		}
	}
	if ents, err := os.ReadDir(filepath.Join(s.dir(id), "control")); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".json") {
				if b, err := os.ReadFile(filepath.Join(s.dir(id), "control", e.Name())); err == nil {
					add(b)
				}
			}
		}
	}
	if s.Mirror != nil {
		it := s.Mirror.List(&blob.ListOptions{Prefix: key(id, "control/")})
		for {
			obj, err := it.Next(ctx)
			if err != nil {
				break
			}
			if b, err := s.Mirror.ReadAll(ctx, obj.Key); err == nil {
				add(b)
			}
		}
	}
	return out
}
