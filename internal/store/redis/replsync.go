package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/store/redis/resp"
)

// syncIdle is how long the snapshot may stall. A master preparing an RDB
// on disk sends a "\n" keep-alive every second, so only a dead connection
// stays silent this long.
const syncIdle = 60 * time.Second

// snapshot is one RDB fetched over the replication protocol.
type snapshot struct {
	// SyncSent is when SYNC was sent; the fork happens after it, unless the
	// master reuses a disk snapshot already in progress.
	SyncSent time.Time
	// Framing is "eof" (diskless, $EOF:<mark>) or "length" ($<len>).
	Framing string
	Size    int64
}

// fetchRDB asks the master at addr for a snapshot the way `redis-cli
// --rdb` does — REPLCONF capa eof, REPLCONF rdb-only 1, SYNC, each sent
// only after the previous reply (pipelined, the master refuses them) —
// and copies the RDB to w.
func (e *endpoint) fetchRDB(ctx context.Context, addr string, w io.Writer) (*snapshot, error) {
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// Cancellation closes the connection, which unblocks any read.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	s := &replConn{conn: conn, br: bufio.NewReaderSize(conn, 256<<10)}
	fail := func(err error) (*snapshot, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, e.scrub(err)
	}
	if e.password != "" {
		args := []string{"AUTH", e.password}
		if e.username != "" {
			args = []string{"AUTH", e.username, e.password}
		}
		if err := s.command(args...); err != nil {
			return fail(fmt.Errorf("AUTH: %w", err))
		}
	}
	if err := s.command("REPLCONF", "capa", "eof"); err != nil {
		return fail(fmt.Errorf("REPLCONF capa eof: %w", err))
	}
	// Redis before 7.0 does not know rdb-only: it then also starts a
	// replication stream after the RDB, which is ignored.
	if err := s.command("REPLCONF", "rdb-only", "1"); err != nil && !isRedisError(err) {
		return fail(fmt.Errorf("REPLCONF rdb-only: %w", err))
	}
	snap := &snapshot{SyncSent: time.Now().UTC()}
	if err := s.send("SYNC"); err != nil {
		return fail(fmt.Errorf("SYNC: %w", err))
	}
	n, err := s.readRDB(w, snap)
	snap.Size = n
	if err != nil {
		return fail(err)
	}
	return snap, nil
}

type replConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// redisError is an error reply of the server.
type redisError string

func (e redisError) Error() string { return string(e) }

func isRedisError(err error) bool {
	var re redisError
	return errors.As(err, &re)
}

func (s *replConn) send(args ...string) error {
	var cmd []byte
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	cmd = resp.AppendCommand(cmd, bs...)
	s.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := s.conn.Write(cmd)
	return err
}

// command sends one command and waits for its status reply.
func (s *replConn) command(args ...string) error {
	if err := s.send(args...); err != nil {
		return err
	}
	line, err := s.line()
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(line, "+"):
		return nil
	case strings.HasPrefix(line, "-"):
		return redisError(line[1:])
	}
	return fmt.Errorf("unexpected reply %q", clip(line))
}

// line reads one reply line, skipping the "\n" keep-alives.
func (s *replConn) line() (string, error) {
	for {
		s.conn.SetReadDeadline(time.Now().Add(syncIdle))
		line, err := s.br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("connection closed by the server")
			}
			return "", err
		}
		if line == "\n" {
			continue // keep-alive while the master prepares the RDB
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
}

const eofMarkLen = 40

// readRDB reads the SYNC reply: "$<len>\r\n<rdb>" (disk) or
// "$EOF:<40 bytes>\r\n<rdb><the same 40 bytes>" (diskless).
func (s *replConn) readRDB(w io.Writer, snap *snapshot) (int64, error) {
	line, err := s.line()
	if err != nil {
		return 0, fmt.Errorf("SYNC: %w", err)
	}
	switch {
	case strings.HasPrefix(line, "-"):
		return 0, fmt.Errorf("SYNC: %w", redisError(line[1:]))
	case strings.HasPrefix(line, "$EOF:"):
		mark := []byte(line[len("$EOF:"):])
		if len(mark) != eofMarkLen {
			return 0, fmt.Errorf("SYNC: bad EOF mark in %q", clip(line))
		}
		snap.Framing = "eof"
		return s.copyUntilMark(w, mark)
	case strings.HasPrefix(line, "$"):
		n, err := strconv.ParseInt(line[1:], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("SYNC: bad length in %q", clip(line))
		}
		snap.Framing = "length"
		var done int64
		for done < n {
			s.conn.SetReadDeadline(time.Now().Add(syncIdle))
			k, err := io.CopyN(w, s.br, min(n-done, 1<<20))
			done += k
			if err != nil {
				if errors.Is(err, io.EOF) {
					return done, fmt.Errorf("SYNC: connection closed after %d of %d bytes", done, n)
				}
				return done, fmt.Errorf("SYNC: after %d of %d bytes: %w", done, n, err)
			}
		}
		return done, nil
	}
	return 0, fmt.Errorf("SYNC: unexpected reply %q", clip(line))
}

// copyUntilMark copies to w everything before the end mark. The last
// eofMarkLen bytes are held back until more data shows they are not the mark.
func (s *replConn) copyUntilMark(w io.Writer, mark []byte) (int64, error) {
	buf := make([]byte, eofMarkLen+256<<10)
	held := 0 // bytes at the start of buf not yet written
	var done int64
	for {
		s.conn.SetReadDeadline(time.Now().Add(syncIdle))
		n, err := s.br.Read(buf[held:])
		data := buf[:held+n]
		// The mark ends the RDB; anything after it (a pre-7.0 master
		// continues with the replication stream) is not ours.
		if i := bytes.Index(data, mark); i >= 0 {
			if _, werr := w.Write(data[:i]); werr != nil {
				return done, werr
			}
			return done + int64(i), nil
		}
		if keep := len(data) - eofMarkLen; keep > 0 {
			if _, werr := w.Write(data[:keep]); werr != nil {
				return done, werr
			}
			done += int64(keep)
			held = copy(buf, data[keep:])
		} else {
			held = len(data)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return done, fmt.Errorf("SYNC: connection closed after %d bytes, before the end mark", done)
			}
			return done, fmt.Errorf("SYNC: after %d bytes: %w", done, err)
		}
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
