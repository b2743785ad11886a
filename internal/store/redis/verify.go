package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/rdb"
	"github.com/linkapp/linkdr/internal/store/redis/resp"
)

// Verification reads back about sampleTarget keys per database, chosen by
// key hash (so the choice is the same on every run), holding at most
// sampleBytes of their values in memory.
const (
	sampleTarget = 1000
	sampleBytes  = 64 << 20
)

// sampler keeps copies of the sampled keys as they stream past.
type sampler struct {
	every int64
	bytes int
	keys  []sampledKey
}

type sampledKey struct {
	key, payload []byte
	expireAt     int64
}

func (s *sampler) offer(h uint64, c restoreArgs) {
	if s.every == 0 || h%uint64(s.every) != 0 || s.bytes+len(c.raw) > sampleBytes {
		return
	}
	s.bytes += len(c.raw) + len(c.key)
	s.keys = append(s.keys, sampledKey{key: bytes.Clone(c.key), payload: bytes.Clone(c.raw), expireAt: c.expireAt})
}

// verify proves the restore: the artifact held exactly the keys the
// manifest counted, the target holds every key restored, and a sample of
// keys has the backup's values and expiries.
func (r *replayer) verify(ctx context.Context, before int64) (string, error) {
	st := r.p.stats
	if st == nil {
		return "", fmt.Errorf("cannot verify: the manifest has no figures for database %d (hint: restore with --verify=false)", r.p.src)
	}
	if r.keys != st.Keys || !maps.Equal(r.byType, st.ByType) {
		return "", fmt.Errorf("%w: database %d: the artifact holds %d keys (%s), the backup's manifest counted %d (%s)",
			store.ErrMismatch, r.p.src, r.keys, typeSummary(r.byType), st.Keys, typeSummary(st.ByType))
	}
	n, err := r.t.dbSize(ctx, r.p.dst)
	if err != nil {
		return "", err
	}
	now := r.node.nowMs()
	var gone int64 // restored keys whose expiry has passed since
	for _, e := range r.expiries {
		if e <= now {
			gone++
		}
	}
	// DBSIZE still counts expired keys Redis has not reclaimed yet.
	if lo, hi := r.restored-gone, r.restored+before; n < lo || n > hi {
		if lo == hi {
			return "", fmt.Errorf("%w: the target holds %d keys, %d were restored", store.ErrMismatch, n, lo)
		}
		return "", fmt.Errorf("%w: the target holds %d keys, expected %d to %d", store.ErrMismatch, n, lo, hi)
	}
	checked, err := r.checkSample(ctx)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("%d keys (%s): counts match; %d sampled values and TTLs match", r.keys, typeSummary(r.byType), checked)
	if r.reencoded > 0 {
		msg += fmt.Sprintf(" (%d re-encoded by the target, compared through a scratch copy)", r.reencoded)
	}
	if r.expired > 0 {
		msg += fmt.Sprintf("; %d keys already expired, skipped", r.expired)
	}
	return msg, nil
}

func typeSummary(m map[string]int64) string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
	}
	return strings.Join(parts, ", ")
}

// ttlSlack is how far a restored key's expiry may be from the backup's
// when the target has no PEXPIRETIME (before Redis 7.0) and it has to be
// worked out from PTTL and the clock.
const ttlSlack = 1000 // ms

// checkSample compares each sampled key on the target with the backup:
// its expiry, and its value — the target's DUMP equals the backup's
// payload, or, when the target re-encoded it (another version or
// settings), equals the DUMP of the payload restored beside it.
func (r *replayer) checkSample(ctx context.Context) (int, error) {
	checked := 0
	expiry := r.node.expireTimeCmd()
	for chunk := range slices.Chunk(r.sample.keys, 200) {
		pipe := r.client.Pipeline()
		ttls := make([]*goredis.Cmd, len(chunk))
		dumps := make([]*goredis.Cmd, len(chunk))
		for i, k := range chunk {
			ttls[i] = pipe.Do(ctx, expiry, k.key)
			dumps[i] = pipe.Do(ctx, "DUMP", k.key)
		}
		sent := time.Now()
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
			return checked, fmt.Errorf("read back sampled keys: %w", r.t.ep.scrub(err))
		}
		received := time.Now()
		var reencoded []int
		for i, k := range chunk {
			if k.expireAt > 0 && k.expireAt <= r.node.nowMs()+ttlSlack {
				continue // expired, or about to: nothing to compare
			}
			v, err := ttls[i].Int64()
			if err != nil {
				return checked, fmt.Errorf("%s %q: %w", expiry, clipKey(k.key), err)
			}
			got, err := dumps[i].Text()
			if errors.Is(err, goredis.Nil) || v == -2 {
				return checked, fmt.Errorf("%w: key %q is missing on the target", store.ErrMismatch, clipKey(k.key))
			}
			if err != nil {
				return checked, fmt.Errorf("DUMP %q: %w", clipKey(k.key), err)
			}
			if err := r.sameExpiry(k, v, sent, received); err != nil {
				return checked, err
			}
			if got == string(k.payload) {
				checked++
				continue
			}
			reencoded = append(reencoded, i)
		}
		if len(reencoded) > 0 {
			same, err := r.sameAsRestored(ctx, chunk, reencoded, dumps)
			if err != nil {
				return checked, err
			}
			for j, i := range reencoded {
				if !same[j] {
					return checked, fmt.Errorf("%w: key %q has another value on the target than in the backup", store.ErrMismatch, clipKey(chunk[i].key))
				}
			}
			checked += len(reencoded)
			r.reencoded += len(reencoded)
		}
	}
	return checked, nil
}

// sameAsRestored restores the backup's payloads of chunk[which] under
// scratch keys in the same slots (so on the same nodes, with the same
// settings) and compares their DUMPs with the target keys' (dumps); the
// scratch keys are removed in the same pipeline.
func (r *replayer) sameAsRestored(ctx context.Context, chunk []sampledKey, which []int, dumps []*goredis.Cmd) ([]bool, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	pipe := r.client.Pipeline()
	scratch := make([]*goredis.Cmd, len(which))
	for j, i := range which {
		k := scratchKey(chunk[i].key, suffix+strconv.Itoa(j))
		pipe.Do(ctx, "RESTORE", k, 0, chunk[i].payload, "REPLACE")
		scratch[j] = pipe.Do(ctx, "DUMP", k)
		pipe.Do(ctx, "DEL", k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("compare sampled keys through scratch copies: %w", r.t.ep.scrub(err))
	}
	same := make([]bool, len(which))
	for j, i := range which {
		same[j] = scratch[j].Val() == dumps[i].Val()
	}
	return same, nil
}

// sameExpiry compares a sampled key's expiry on the target (v, the reply
// of expireTimeCmd between sent and received) with the backup's.
func (r *replayer) sameExpiry(k sampledKey, v int64, sent, received time.Time) error {
	switch {
	case k.expireAt == 0 && v != -1:
		return fmt.Errorf("%w: key %q expires on the target (%s %d), but had no expiry", store.ErrMismatch, clipKey(k.key), r.node.expireTimeCmd(), v)
	case k.expireAt > 0 && v < 0:
		return fmt.Errorf("%w: key %q has no expiry on the target", store.ErrMismatch, clipKey(k.key))
	case k.expireAt == 0:
		return nil
	}
	if r.node.expireTimeCmd() == "PEXPIRETIME" {
		if v != k.expireAt {
			return fmt.Errorf("%w: key %q expires at %d on the target, the backup says %d (Unix ms)", store.ErrMismatch, clipKey(k.key), v, k.expireAt)
		}
		return nil
	}
	// PTTL was evaluated between sent and received.
	lo, _ := r.node.expireAt(v, sent)
	hi, _ := r.node.expireAt(v, received)
	if k.expireAt < lo-ttlSlack || k.expireAt > hi+ttlSlack {
		return fmt.Errorf("%w: key %q expires between %d and %d on the target, the backup says %d (Unix ms)", store.ErrMismatch, clipKey(k.key), lo, hi, k.expireAt)
	}
	return nil
}

// VerifyArtifact reads a resp artifact to its end — every command, every
// payload's own CRC-64 — and compares its keys with the manifest; an rdb
// artifact's header and checksum are proven the same way Redis would on
// load.
func (s *Redis) VerifyArtifact(ctx context.Context, m *repo.Manifest, a *repo.Artifact, r io.Reader) error {
	src, st, err := decodeManifest(m)
	if err != nil {
		return err
	}
	switch a.MediaType {
	case MediaTypeRESP:
		return verifyRESP(a, src, st, r)
	case MediaTypeRDB:
		chk := &rdb.Checker{}
		if _, err := io.Copy(chk, r); err != nil {
			return err
		}
		f, err := chk.Result()
		if err != nil {
			return integrity(err)
		}
		if f.Version > src.RDBVersion {
			return fmt.Errorf("%w: RDB version %d, the manifest says %d", envelope.ErrIntegrity, f.Version, src.RDBVersion)
		}
		return nil
	}
	return fmt.Errorf("artifact %s: unknown media type %q", a.Name, a.MediaType)
}

func verifyRESP(a *repo.Artifact, src Source, st Stats, r io.Reader) error {
	db, err := strconv.Atoi(a.Meta["database"])
	if err != nil {
		return fmt.Errorf("%w: artifact %s has no database number", envelope.ErrIntegrity, a.Name)
	}
	rd := resp.NewReader(r)
	var seen keySet
	var entries, keys int64
	byType := map[string]int64{}
	for first := true; ; first = false {
		args, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return integrity(err)
		}
		if first {
			if len(args) != 2 || !bytes.EqualFold(args[0], []byte("SELECT")) || string(args[1]) != strconv.Itoa(db) {
				return fmt.Errorf("%w: does not start with SELECT %d", envelope.ErrIntegrity, db)
			}
			continue
		}
		if !bytes.EqualFold(args[0], []byte("RESTORE")) {
			return fmt.Errorf("%w: unexpected command %q at byte %d", envelope.ErrIntegrity, clipKey(args[0]), rd.Offset())
		}
		c, err := parseRestore(args)
		if err != nil {
			return fmt.Errorf("at byte %d: %w", rd.Offset(), err)
		}
		if _, err := rdb.ParsePayload(c.raw, true); err != nil {
			return fmt.Errorf("key %q at byte %d: %w", clipKey(c.key), rd.Offset(), integrity(err))
		}
		if c.payload.Version > src.RDBVersion {
			return fmt.Errorf("%w: key %q has RDB version %d, the manifest says at most %d", envelope.ErrIntegrity, clipKey(c.key), c.payload.Version, src.RDBVersion)
		}
		entries++
		if seen.add(hashKey(c.key)) {
			keys++
			byType[c.payload.TypeName()]++
		}
	}
	ds := st.db(db)
	if ds == nil {
		return fmt.Errorf("%w: the manifest has no figures for database %d", envelope.ErrIntegrity, db)
	}
	if keys != ds.Keys || entries != ds.Keys+ds.Repeated || !maps.Equal(byType, ds.ByType) {
		return fmt.Errorf("%w: holds %d keys %v in %d commands, the manifest says %d keys %v and %d repeats",
			envelope.ErrIntegrity, keys, byType, entries, ds.Keys, ds.ByType, ds.Repeated)
	}
	return nil
}
