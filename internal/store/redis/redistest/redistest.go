// Package redistest fills Redis servers with keys of every type and reads
// them back in a canonical form, so tests and benchmarks can prove that a
// restore reproduced a dataset — keys, values and expiries — without
// trusting linkdr's own verification.
package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Spec says what Fill writes. Key names are Prefix + a type letter + a
// number, e.g. "t1:s:42".
type Spec struct {
	Prefix                                       string
	Strings, Lists, Hashes, Sets, ZSets, Streams int
	// TTLFraction of the keys get an expiry between MinTTL and MaxTTL.
	TTLFraction    float64
	MinTTL, MaxTTL time.Duration
	// Big adds a few large values of each type (quicklists of many nodes,
	// hash tables, skiplists, streams with consumer groups and pending
	// entries) besides the small, compactly encoded ones.
	Big  bool
	Seed uint64
}

// Total is the number of keys Fill writes.
func (s Spec) Total() int {
	n := s.Strings + s.Lists + s.Hashes + s.Sets + s.ZSets + s.Streams
	if s.Big {
		n += 6 * bigPerType
	}
	return n
}

const bigPerType = 5

// Fill writes the keys of spec, pipelined, and returns how many of each
// type it wrote. c may be a client or a cluster client.
func Fill(ctx context.Context, c goredis.Cmdable, spec Spec) (map[string]int64, error) {
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed))
	counts := map[string]int64{}
	pipe := c.Pipeline()
	flush := func(force bool) error {
		if pipe.Len() < 2000 && !force {
			return nil
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	ttl := func(key string) {
		if rng.Float64() < spec.TTLFraction {
			span := int64(spec.MaxTTL - spec.MinTTL)
			d := spec.MinTTL + time.Duration(rng.Int64N(max(span, 1)))
			pipe.PExpire(ctx, key, d)
		}
	}
	type gen struct {
		typ, letter string
		n           int
		write       func(key string, big bool)
	}
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	gens := []gen{
		{"string", "s", spec.Strings, func(k string, big bool) {
			switch {
			case big:
				pipe.Set(ctx, k, word(20000+rng.IntN(20000)), 0)
			case rng.IntN(5) == 0:
				pipe.Set(ctx, k, strconv.Itoa(rng.IntN(1000000)), 0) // int-encoded
			default:
				v := []byte(word(10 + rng.IntN(200)))
				v[0] = byte(rng.IntN(256)) // not only text
				pipe.Set(ctx, k, v, 0)
			}
		}},
		{"list", "l", spec.Lists, func(k string, big bool) {
			n := 1 + rng.IntN(20)
			if big {
				n = 3000
			}
			vals := make([]any, n)
			for i := range vals {
				vals[i] = word(5 + rng.IntN(30))
			}
			pipe.RPush(ctx, k, vals...)
		}},
		{"hash", "h", spec.Hashes, func(k string, big bool) {
			n := 1 + rng.IntN(10)
			if big {
				n = 600
			}
			vals := make([]any, 0, 2*n)
			for i := range n {
				vals = append(vals, "f"+strconv.Itoa(i), word(3+rng.IntN(40)))
			}
			pipe.HSet(ctx, k, vals...)
		}},
		{"set", "S", spec.Sets, func(k string, big bool) {
			n := 1 + rng.IntN(15)
			if big {
				n = 700
			}
			vals := make([]any, n)
			ints := rng.IntN(2) == 0 && !big
			for i := range vals {
				if ints {
					vals[i] = rng.IntN(100000) // intset
				} else {
					vals[i] = word(4 + rng.IntN(20))
				}
			}
			pipe.SAdd(ctx, k, vals...)
		}},
		{"zset", "z", spec.ZSets, func(k string, big bool) {
			n := 1 + rng.IntN(15)
			if big {
				n = 700
			}
			ms := make([]goredis.Z, n)
			for i := range ms {
				ms[i] = goredis.Z{Score: float64(rng.IntN(1000)) / 7, Member: word(4 + rng.IntN(20))}
			}
			pipe.ZAdd(ctx, k, ms...)
		}},
		{"stream", "x", spec.Streams, func(k string, big bool) {
			n := 1 + rng.IntN(10)
			if big {
				n = 2000
			}
			for i := range n {
				pipe.XAdd(ctx, &goredis.XAddArgs{Stream: k, ID: fmt.Sprintf("%d-%d", 1700000000000+i, i%3),
					Values: []any{"field", word(5 + rng.IntN(20)), "n", i}})
			}
			if big || rng.IntN(4) == 0 {
				pipe.XGroupCreate(ctx, k, "readers", "0")
				pipe.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "readers", Consumer: "c1", Streams: []string{k, ">"}, Count: int64(1 + n/2)})
				pipe.XGroupCreate(ctx, k, "idle", "$")
			}
		}},
	}
	for _, g := range gens {
		n := g.n
		if spec.Big {
			n += bigPerType
		}
		for i := range n {
			k := fmt.Sprintf("%s%s:%d", spec.Prefix, g.letter, i)
			big := spec.Big && i >= g.n
			if big {
				k = fmt.Sprintf("%s%s:big:%d", spec.Prefix, g.letter, i-g.n)
			}
			g.write(k, big)
			ttl(k)
			counts[g.typ]++
			if err := flush(false); err != nil {
				return counts, fmt.Errorf("fill: %w", err)
			}
		}
	}
	if err := flush(true); err != nil {
		return counts, fmt.Errorf("fill: %w", err)
	}
	return counts, nil
}

// Key is one key read back: its type, its value in a canonical text form
// (members of sets and fields of hashes sorted) and its absolute expiry in
// Unix milliseconds on the server's clock (0: none), read with PEXPIRETIME
// (Redis 7.0 and later).
type Key struct {
	Type     string
	Value    string
	ExpireAt int64
}

// Masters returns the nodes that hold data: addrs itself for a
// standalone server, the masters for a cluster node.
func Masters(ctx context.Context, opt *goredis.Options) ([]string, error) {
	c := goredis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(ctx, "cluster").Result()
	if err != nil {
		return nil, err
	}
	if !strings.Contains(info, "cluster_enabled:1") {
		return []string{opt.Addr}, nil
	}
	//lint:ignore SA1019 CLUSTER SHARDS exists only since Redis 7.0; CLUSTER SLOTS everywhere.
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range slots {
		if a := s.Nodes[0].Addr; !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Snapshot reads every key of database db on the given servers (the
// masters, for a cluster).
func Snapshot(ctx context.Context, opt goredis.Options, masters []string, db int) (map[string]Key, error) {
	out := map[string]Key{}
	for _, addr := range masters {
		o := opt
		o.Addr, o.DB = addr, db
		c := goredis.NewClient(&o)
		err := snapshotNode(ctx, c, out)
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", addr, err)
		}
	}
	return out, nil
}

func snapshotNode(ctx context.Context, c *goredis.Client, out map[string]Key) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return err
		}
		if err := readKeys(ctx, c, keys, out); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func readKeys(ctx context.Context, c *goredis.Client, keys []string, out map[string]Key) error {
	pipe := c.Pipeline()
	types := make([]*goredis.StatusCmd, len(keys))
	for i, k := range keys {
		types[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	vals := make([]goredis.Cmder, len(keys))
	ttls := make([]*goredis.Cmd, len(keys))
	for i, k := range keys {
		switch types[i].Val() {
		case "string":
			vals[i] = pipe.Get(ctx, k)
		case "list":
			vals[i] = pipe.LRange(ctx, k, 0, -1)
		case "hash":
			vals[i] = pipe.HGetAll(ctx, k)
		case "set":
			vals[i] = pipe.SMembers(ctx, k)
		case "zset":
			vals[i] = pipe.ZRangeWithScores(ctx, k, 0, -1)
		case "stream":
			vals[i] = pipe.Do(ctx, "XINFO", "STREAM", k, "FULL", "COUNT", 0)
		}
		ttls[i] = pipe.Do(ctx, "PEXPIRETIME", k) // exact, in Unix ms
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, k := range keys {
		if vals[i] == nil {
			continue // expired between SCAN and TYPE
		}
		key := Key{Type: types[i].Val(), Value: canonical(vals[i])}
		if at := ttls[i].Val().(int64); at >= 0 {
			key.ExpireAt = at
		} else if at == -2 {
			continue
		}
		out[k] = key
	}
	return nil
}

func canonical(c goredis.Cmder) string {
	switch c := c.(type) {
	case *goredis.StringCmd:
		return c.Val()
	case *goredis.StringSliceCmd:
		v := c.Val()
		if c.Name() == "smembers" {
			v = append([]string(nil), v...)
			sort.Strings(v)
		}
		return fmt.Sprintf("%q", v)
	case *goredis.MapStringStringCmd:
		v := c.Val()
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%q=%q ", k, v[k])
		}
		return b.String()
	case *goredis.ZSliceCmd:
		return fmt.Sprint(c.Val())
	case *goredis.Cmd:
		return fmt.Sprint(dropRadix(c.Val()))
	}
	return fmt.Sprintf("%T", c)
}

// dropRadix removes the radix tree's node counts from XINFO STREAM FULL:
// they describe memory layout, not data.
func dropRadix(v any) any {
	l, ok := v.([]any)
	if !ok {
		return v
	}
	var out []any
	for i := 0; i+1 < len(l); i += 2 {
		if k, _ := l[i].(string); strings.HasPrefix(k, "radix-tree") {
			continue
		}
		out = append(out, l[i], l[i+1])
	}
	return out
}

// Diff lists up to 20 differences between two snapshots; expiries may
// differ by ttlSlack.
func Diff(want, got map[string]Key, ttlSlack time.Duration) []string {
	var out []string
	add := func(format string, args ...any) bool {
		out = append(out, fmt.Sprintf(format, args...))
		return len(out) < 20
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, g := want[k], got[k]
		switch _, ok := got[k]; {
		case !ok:
			if !add("%q missing", k) {
				return out
			}
		case w.Type != g.Type || w.Value != g.Value:
			if !add("%q differs: %s %.80q vs %s %.80q", k, w.Type, w.Value, g.Type, g.Value) {
				return out
			}
		case (w.ExpireAt == 0) != (g.ExpireAt == 0) || absMs(w.ExpireAt-g.ExpireAt) > ttlSlack.Milliseconds():
			if !add("%q expires at %d, want %d", k, g.ExpireAt, w.ExpireAt) {
				return out
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if !add("%q unexpected", k) {
				return out
			}
		}
	}
	if len(want) != len(got) {
		out = append(out, fmt.Sprintf("%d keys, want %d", len(got), len(want)))
	}
	return out
}

func absMs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
