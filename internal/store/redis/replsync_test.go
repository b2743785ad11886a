package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/store/redis/resp"
)

// replServer plays a master's side of the replication handshake, so that
// the framings' corner cases (keep-alives, a mark split across reads,
// bytes after the mark, a connection cut short) can be produced at will;
// the real-server tests cover the common paths.
type replServer struct {
	t        *testing.T
	addr     string
	commands chan []string
}

func newReplServer(t *testing.T, reply func(cmd []string, w io.Writer) bool) *replServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &replServer{t: t, addr: l.Addr().String(), commands: make(chan []string, 10)}
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rd := resp.NewReader(bufio.NewReader(c))
		for {
			args, err := rd.Next()
			if err != nil {
				return
			}
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			s.commands <- cmd
			if !reply(cmd, c) {
				return
			}
		}
	}()
	return s
}

// chunks writes parts with pauses, so they arrive as separate reads.
func chunks(w io.Writer, parts ...string) {
	for _, p := range parts {
		io.WriteString(w, p)
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFetchRDB(t *testing.T) {
	rdbFile := "REDIS0010" + strings.Repeat("x", 100) + "\xff12345678"
	mark := strings.Repeat("a", 40)
	cases := []struct {
		name    string
		sync    func(w io.Writer)
		framing string
		want    string // the RDB received, or the error
		err     bool
	}{
		{"EOFMarkWithKeepAlives", func(w io.Writer) {
			chunks(w, "\n", "\n", "$EOF:"+mark+"\r\n", rdbFile[:50], rdbFile[50:]+mark[:7], mark[7:])
		}, "eof", rdbFile, false},
		{"EOFMarkThenMore", func(w io.Writer) {
			chunks(w, "$EOF:"+mark+"\r\n"+rdbFile+mark+"*1\r\n$4\r\nPING\r\n")
		}, "eof", rdbFile, false},
		{"LengthWithKeepAlives", func(w io.Writer) {
			chunks(w, "\n", "\n", "\n", fmt.Sprintf("$%d\r\n", len(rdbFile)), rdbFile[:60], rdbFile[60:])
		}, "length", rdbFile, false},
		{"LengthCutShort", func(w io.Writer) { chunks(w, fmt.Sprintf("$%d\r\n", len(rdbFile)), rdbFile[:60]) }, "", fmt.Sprintf("connection closed after 60 of %d bytes", len(rdbFile)), true},
		{"MarkNeverComes", func(w io.Writer) { chunks(w, "$EOF:"+mark+"\r\n", rdbFile) }, "", "before the end mark", true},
		{"ErrorReply", func(w io.Writer) { chunks(w, "-ERR no sync for you\r\n") }, "", "SYNC: ERR no sync for you", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newReplServer(t, func(cmd []string, w io.Writer) bool {
				switch strings.Join(cmd, " ") {
				case "AUTH linkdr pw", "REPLCONF capa eof":
					io.WriteString(w, "+OK\r\n")
				case "REPLCONF rdb-only 1":
					io.WriteString(w, "-ERR unknown option\r\n") // as before Redis 7.0
				case "SYNC":
					c.sync(w)
					return false
				default:
					io.WriteString(w, "-ERR unexpected\r\n")
				}
				return true
			})
			e := &endpoint{addrs: []string{s.addr}, username: "linkdr", password: "pw", db: -1}
			var got bytes.Buffer
			snap, err := e.fetchRDB(context.Background(), s.addr, &got)
			if c.err {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != c.want || snap.Framing != c.framing || snap.Size != int64(len(c.want)) {
				t.Fatalf("got %q (%s, %d bytes)", got.String(), snap.Framing, snap.Size)
			}
			var sent []string
			for range 4 {
				sent = append(sent, strings.Join(<-s.commands, " "))
			}
			if strings.Join(sent, "|") != "AUTH linkdr pw|REPLCONF capa eof|REPLCONF rdb-only 1|SYNC" {
				t.Fatalf("commands sent: %q", sent)
			}
		})
	}
	t.Run("Cancelled", func(t *testing.T) {
		s := newReplServer(t, func(cmd []string, w io.Writer) bool {
			if cmd[0] == "SYNC" {
				io.WriteString(w, "\n") // and then nothing, as a master preparing a huge RDB
				time.Sleep(time.Minute)
				return false
			}
			io.WriteString(w, "+OK\r\n")
			return true
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for cmd := range s.commands {
				if cmd[0] == "SYNC" {
					cancel()
				}
			}
		}()
		e := &endpoint{addrs: []string{s.addr}, db: -1}
		if _, err := e.fetchRDB(ctx, s.addr, io.Discard); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}
