package rdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math/rand/v2"
	"os"
	"testing"
)

func TestCRC64(t *testing.T) {
	t.Run("CheckValue", func(t *testing.T) {
		if got := CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
			t.Fatalf("CRC64(123456789) = %016x, want e9c6d914c4b8d9ca", got)
		}
	})
	t.Run("MatchesBytewiseAndIncremental", func(t *testing.T) {
		// hash/crc64 with the same polynomial, corrected for its
		// pre- and post-inversion, is an independent reference.
		tab := crc64.MakeTable(jonesReflected)
		rng := rand.New(rand.NewPCG(1, 2))
		for n := range 300 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			want := ^crc64.Update(^uint64(0), tab, b)
			if got := CRC64(0, b); got != want {
				t.Fatalf("len %d: %016x, want %016x", n, got, want)
			}
			cut := n / 3
			if got := CRC64(CRC64(0, b[:cut]), b[cut:]); got != want {
				t.Fatalf("len %d split: %016x, want %016x", n, got, want)
			}
		}
	})
}

// payload of `SET a hello` dumped by Redis 7.0.15.
var dumpHello = []byte("\x00\x05hello\x0a\x00\x63\x72\xdf\x76\x65\x34\x20\x0a")

func TestParsePayload(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		p, err := ParsePayload(dumpHello, true)
		if err != nil {
			t.Fatal(err)
		}
		if p.Version != 10 || p.TypeName() != "string" {
			t.Fatalf("got %+v", p)
		}
	})
	t.Run("ErrPayload", func(t *testing.T) {
		bad := bytes.Clone(dumpHello)
		bad[3] ^= 1
		if _, err := ParsePayload(bad, true); !errors.Is(err, ErrPayload) {
			t.Fatalf("flipped byte: err = %v, want ErrPayload", err)
		}
		if _, err := ParsePayload(bad, false); err != nil {
			t.Fatalf("without check: %v", err)
		}
		if _, err := ParsePayload(dumpHello[:5], true); !errors.Is(err, ErrPayload) {
			t.Fatalf("short: err = %v", err)
		}
	})
}

func TestChecker(t *testing.T) {
	// testdata/small.rdb was written by `redis-cli --rdb` from Redis 7.0.15.
	file, err := os.ReadFile("testdata/small.rdb")
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 3, 7, 8, 9, 64, 1 << 20} {
		c := &Checker{}
		for b := file; len(b) > 0; {
			n := min(chunk, len(b))
			c.Write(b[:n])
			b = b[n:]
		}
		f, err := c.Result()
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if f.Version != 10 || f.Aux["redis-ver"] != "7.0.15" || f.Size != int64(len(file)) || f.Created().IsZero() {
			t.Fatalf("chunk %d: %+v", chunk, f)
		}
		if f.Checksum != binary.LittleEndian.Uint64(file[len(file)-8:]) {
			t.Fatalf("chunk %d: checksum %x", chunk, f.Checksum)
		}
	}
	t.Run("ErrFile", func(t *testing.T) {
		cases := map[string][]byte{
			"flipped":   flip(file, len(file)/2),
			"truncated": file[:len(file)-20],
			"no magic":  append([]byte("RIDES"), file[5:]...),
		}
		for name, b := range cases {
			c := &Checker{}
			c.Write(b)
			if _, err := c.Result(); !errors.Is(err, ErrFile) {
				t.Errorf("%s: err = %v, want ErrFile", name, err)
			}
		}
	})
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 0x40
	return b
}

func TestVersionFor(t *testing.T) {
	cases := map[string]int{"7.0.15": 10, "7.2.4": 11, "7.4.1": 12, "8.0.2": 12, "6.2.14": 9, "5.0.7": 9, "4.0.14": 8, "3.2.12": 7, "3.0.7": 6}
	for in, want := range cases {
		if got, ok := VersionFor(in); !ok || got != want {
			t.Errorf("VersionFor(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := VersionFor("unknown"); ok {
		t.Error("VersionFor(unknown) ok")
	}
}

func FuzzChecker(f *testing.F) {
	file, err := os.ReadFile("testdata/small.rdb")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file)
	f.Add(file[:40])
	f.Add([]byte("REDIS0011\xfa\x01a\xc3\x01\x02x\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &Checker{}
		c.Write(b)
		f, err := c.Result()
		if err != nil {
			if !errors.Is(err, ErrFile) {
				t.Fatalf("error not wrapping ErrFile: %v", err)
			}
			return
		}
		// Accepted: the trailer matches the CRC of the rest.
		if f.Checksum != 0 && f.Checksum != CRC64(0, b[:len(b)-8]) {
			t.Fatalf("accepted a wrong checksum")
		}
		if b[len(b)-9] != 0xFF {
			t.Fatalf("accepted a file without EOF opcode")
		}
	})
}

func FuzzParsePayload(f *testing.F) {
	f.Add(dumpHello)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayload(b, true)
		if err == nil && len(b) >= 11 && p.Type != b[0] {
			t.Fatal("wrong type byte")
		}
	})
}
