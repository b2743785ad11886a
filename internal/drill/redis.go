package drill

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/drillreport"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis"
)

func init() { RegisterKind("redis", redisKind{}) }

// RedisCanaryKey is the sorted set of canaries in each database a redis
// store backs up: member "<id> <written-at RFC 3339>", score the write
// time in Unix milliseconds (for trimming to the newest ones).
const RedisCanaryKey = "linkdr:canaries"

// redisCanariesKept bounds the canary set, as the postgres table is.
const redisCanariesKept = 100

// redisKind restores a resp backup database by database into spare
// databases: the drill's scratch server for the store, else empty
// databases of the store's own standalone server that the store does
// not back up. A cluster has only database 0, so a cluster store needs
// a scratch server.
type redisKind struct{}

func redisConnect(ctx context.Context, env Env, raw string) (*redis.Deployment, error) {
	pwFile := ""
	if raw == "" {
		raw = env.Store.URL.Reveal()
		if f := env.Store.PasswordFile; f != "" {
			pwFile = env.Ops.Plan.Resolve(f)
		}
	}
	d, err := redis.Connect(ctx, raw, pwFile)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", env.Store.Name, err)
	}
	return d, nil
}

// redisLiveDBs are the databases the store backs up: the plan's, else
// those of its latest backup, else 0.
func redisLiveDBs(env Env, d *redis.Deployment) []int {
	if d.Cluster() {
		return []int{0}
	}
	if dbs, err := redis.ParseDatabases(env.Store.Databases); err == nil && len(dbs) > 0 {
		return dbs
	}
	if env.Latest != nil {
		if src, _, err := redis.DecodeManifest(env.Latest); err == nil && len(src.Databases) > 0 {
			return src.Databases
		}
	}
	return []int{0}
}

// WriteCanary adds the canary to the set in every database the store
// backs up, keeping the newest redisCanariesKept.
func (redisKind) WriteCanary(ctx context.Context, env Env, cn Canary) error {
	d, err := redisConnect(ctx, env, "")
	if err != nil {
		return err
	}
	member := cn.ID + " " + cn.WrittenAt.UTC().Format(time.RFC3339Nano)
	for _, db := range redisLiveDBs(env, d) {
		c := d.Client(db)
		_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.ZAdd(ctx, RedisCanaryKey, goredis.Z{Score: float64(cn.WrittenAt.UnixMilli()), Member: member})
			p.ZRemRangeByRank(ctx, RedisCanaryKey, 0, -redisCanariesKept-1)
			return nil
		})
		c.Close()
		if err != nil {
			return fmt.Errorf("write canary into database %d of %s: %w", db, d, d.Scrub(err))
		}
	}
	return nil
}

func readRedisCanaries(ctx context.Context, d *redis.Deployment, db int, label string) ([]Canary, error) {
	c := d.Client(db)
	defer c.Close()
	members, err := c.ZRange(ctx, RedisCanaryKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read canaries (%s) in database %d of %s: %w", RedisCanaryKey, db, d, d.Scrub(err))
	}
	var out []Canary
	for _, m := range members {
		id, at, ok := strings.Cut(m, " ")
		t, err := time.Parse(time.RFC3339Nano, at)
		if !ok || err != nil {
			continue // not one of ours
		}
		out = append(out, Canary{ID: id, Database: label, WrittenAt: t.UTC()})
	}
	return out, nil
}

func (redisKind) LiveCanaries(ctx context.Context, env Env) ([]Canary, error) {
	d, err := redisConnect(ctx, env, "")
	if err != nil {
		return nil, err
	}
	var out []Canary
	for _, db := range redisLiveDBs(env, d) {
		cs, err := readRedisCanaries(ctx, d, db, strconv.Itoa(db))
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func decodeRedis(m *repo.Manifest) (redis.Source, redis.Stats, error) {
	src, st, err := redis.DecodeManifest(m)
	if err == nil && len(st.Databases) == 0 {
		err = fmt.Errorf("backup %s: the manifest has no per-database figures to prove a restore against", m.ID)
	}
	return src, st, err
}

// redisPlanned is one database of the backup and the scratch database
// it goes to.
type redisPlanned struct {
	src, dst int
	stats    *redis.DBStats
	// claimed: the drill restored (or began restoring) into dst, which
	// was empty; only claimed databases are ever emptied.
	claimed bool
}

// DrillMethods: rdb snapshots load only at a server's start, so a drill
// restores the newest resp backup even when an rdb one is newer.
func (redisKind) DrillMethods() []string { return []string{"resp"} }

func (redisKind) Scratch(ctx context.Context, env Env, m *repo.Manifest) (Scratch, error) {
	src, st, err := decodeRedis(m)
	if err != nil {
		return nil, err
	}
	if m.Method != "resp" {
		return nil, fmt.Errorf("backup %s is method %s, restored only by a cold start from files: a drill restores resp backups (hint: add {method: resp} to stores.%s.backups)", m.ID, m.Method, env.Store.Name)
	}
	live, err := redisConnect(ctx, env, "")
	if err != nil {
		return nil, err
	}
	drillName := env.Drill
	if drillName == "" {
		drillName = "<drill>"
	}
	hint := fmt.Sprintf("hint: set drills.%s.scratch.%s to a spare Redis server, redis://host:port", drillName, env.Store.Name)
	target := live
	switch {
	case env.ScratchURL != "":
		if target, err = redis.Connect(ctx, env.ScratchURL, ""); err != nil {
			return nil, fmt.Errorf("scratch for %s: %w", env.Store.Name, err)
		}
	case live.Cluster():
		return nil, fmt.Errorf("store %s is a Redis Cluster, which has only database 0, the live one: a drill needs a scratch server to restore into (%s)", env.Store.Name, hint)
	}
	// The store's databases on its own server are never scratch, even
	// when empty (a database emptied by mistake is exactly what a drill
	// may be run for).
	protected := map[int]bool{}
	if sharesNode(live, target) {
		for _, db := range redisLiveDBs(env, live) {
			protected[db] = true
		}
		for _, db := range src.Databases {
			protected[db] = true
		}
		if live.Cluster() {
			protected[0] = true
		}
	}
	s := &redisScratch{env: env, target: target, protected: protected}
	dbs := make([]int, 0, len(st.Databases))
	for _, ds := range st.Databases {
		dbs = append(dbs, ds.DB)
	}
	if (target.Cluster() || target.DB() >= 0) && len(dbs) > 1 {
		return nil, fmt.Errorf("scratch %s holds one database, but backup %s holds databases %v: leave the database out of a standalone scratch URL and the drill picks spare ones", target, m.ID, dbs)
	}
	used := map[int]bool{}
	ndb := target.Databases(ctx)
	for _, ds := range st.Databases {
		p := &redisPlanned{src: ds.DB, dst: -1, stats: ds}
		switch {
		case target.Cluster():
			p.dst = 0
		case target.DB() >= 0:
			p.dst = target.DB()
		}
		if p.dst >= 0 {
			if protected[p.dst] {
				return nil, fmt.Errorf("scratch %s is database %d of store %s itself: name a database the store does not use (%s)", target, p.dst, env.Store.Name, hint)
			}
			n, err := target.DBSize(ctx, p.dst)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				return nil, fmt.Errorf("scratch %s: database %d already holds %d keys; a drill restores only into an empty database", target, p.dst, n)
			}
		} else {
			// The highest empty database the store does not use: apps
			// tend to take the low ones.
			for db := ndb - 1; db >= 0 && p.dst < 0; db-- {
				if protected[db] || used[db] {
					continue
				}
				n, err := target.DBSize(ctx, db)
				if err != nil {
					return nil, err
				}
				if n == 0 {
					p.dst = db
				}
			}
			if p.dst < 0 {
				return nil, fmt.Errorf("no spare database on %s to restore database %d into: all %d are in use or hold keys (%s)", target, ds.DB, ndb, hint)
			}
		}
		used[p.dst] = true
		s.dbs = append(s.dbs, p)
	}
	return s, nil
}

// sharesNode: whether two deployments have a master in common.
func sharesNode(a, b *redis.Deployment) bool {
	for _, x := range a.Addrs() {
		if slices.Contains(b.Addrs(), x) {
			return true
		}
	}
	return false
}

type redisScratch struct {
	env       Env
	target    *redis.Deployment
	protected map[int]bool
	dbs       []*redisPlanned
	checked   []string
}

func (s *redisScratch) Describe() string {
	var d []string
	for _, p := range s.dbs {
		d = append(d, strconv.Itoa(p.dst))
	}
	return fmt.Sprintf("%s database %s", s.target, strings.Join(d, ", "))
}

// Restore restores each database of the backup into its scratch
// database through the store's own restore, with its verification
// (key counts by type, and a sample of values and expiries).
func (s *redisScratch) Restore(ctx context.Context, m *repo.Manifest) error {
	for _, p := range s.dbs {
		p.claimed = true
		_, res, err := s.env.Ops.Restore(ctx, m.Store, ops.RestoreOptions{
			Backup: m.ID, Target: s.target.URL(p.dst), Select: []string{strconv.Itoa(p.src)}, Verify: true,
		})
		if errors.Is(err, store.ErrTargetNotEmpty) {
			// Someone wrote there since Scratch looked: not ours to empty.
			p.claimed = false
		}
		if res != nil {
			for _, it := range res.Items {
				if it.Checked != "" {
					s.checked = append(s.checked, fmt.Sprintf("db%d: %s", p.src, it.Checked))
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Compare counts the keys of each restored database, in all and by type,
// against the manifest. Keys with an expiry may have expired since the
// backup (the restore skips those already past), so with W such keys a
// count from manifest−W to manifest is right.
func (s *redisScratch) Compare(ctx context.Context, m *repo.Manifest) (drillreport.Integrity, error) {
	var in drillreport.Integrity
	var bad []string
	for _, p := range s.dbs {
		ds := p.stats
		n, err := s.target.DBSize(ctx, p.dst)
		if err != nil {
			return in, err
		}
		it := drillreport.IntegrityItem{Name: fmt.Sprintf("db%d", p.src), ExpectedRows: ds.Keys, Rows: n, OK: true}
		var probs []string
		if n > ds.Keys || n < ds.Keys-ds.WithTTL {
			msg := fmt.Sprintf("%d keys restored, the backup's manifest says %d", n, ds.Keys)
			if ds.WithTTL > 0 {
				msg += fmt.Sprintf(" (%d of them with an expiry, which may have passed)", ds.WithTTL)
			}
			probs = append(probs, msg)
		}
		if knownTypes(ds.ByType) {
			byType, err := s.countTypes(ctx, p.dst)
			if err != nil {
				return in, err
			}
			for _, t := range slices.Sorted(maps.Keys(merge(ds.ByType, byType))) {
				want, got := ds.ByType[t], byType[t]
				if got > want || got < want-ds.WithTTL {
					probs = append(probs, fmt.Sprintf("%d %s keys restored, the backup's manifest says %d", got, t, want))
				}
			}
		}
		if len(probs) > 0 {
			it.OK, it.Problem = false, strings.Join(probs, "; ")
			bad = append(bad, it.Name+": "+it.Problem)
		}
		in.Items = append(in.Items, it)
	}
	return judgeIntegrity(in, bad, strings.Join(s.checked, "; "))
}

// knownTypes: TYPE names module values by module, so only figures of the
// core types can be compared type by type.
func knownTypes(m map[string]int64) bool {
	for t := range m {
		if !slices.Contains([]string{"string", "list", "set", "zset", "hash", "stream"}, t) {
			return false
		}
	}
	return true
}

func merge(a, b map[string]int64) map[string]int64 {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]int64{}
	}
	for k := range b {
		out[k] += 0
	}
	return out
}

// countTypes SCANs a scratch database on every master and asks TYPE of
// each key, pipelined.
func (s *redisScratch) countTypes(ctx context.Context, db int) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.eachKeys(ctx, db, func(c *goredis.Client, keys []string) error {
		cmds, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range keys {
				p.Type(ctx, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, cmd := range cmds {
			if t := cmd.(*goredis.StatusCmd).Val(); t != "none" {
				out[t]++
			}
		}
		return nil
	})
	return out, err
}

// eachKeys runs fn on each SCAN batch of database db of every master.
func (s *redisScratch) eachKeys(ctx context.Context, db int, fn func(c *goredis.Client, keys []string) error) error {
	for _, c := range s.target.NodeClients(db) {
		err := func() error {
			defer c.Close()
			var cursor uint64
			for {
				keys, next, err := c.Scan(ctx, cursor, "", 1000).Result()
				if err != nil {
					return err
				}
				if len(keys) > 0 {
					if err := fn(c, keys); err != nil {
						return err
					}
				}
				if next == 0 {
					return nil
				}
				cursor = next
			}
		}()
		if err != nil {
			return fmt.Errorf("database %d of %s: %w", db, s.target, s.target.Scrub(err))
		}
	}
	return nil
}

func (s *redisScratch) Canaries(ctx context.Context) ([]Canary, error) {
	var out []Canary
	for _, p := range s.dbs {
		cs, err := readRedisCanaries(ctx, s.target, p.dst, strconv.Itoa(p.src))
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

// CheckURL maps a redis check's database (a number; none: 0, else the
// only one restored) to its scratch database.
func (s *redisScratch) CheckURL(database string) (string, bool) {
	for _, p := range s.dbs {
		if strconv.Itoa(p.src) == database || (database == "" && (p.src == 0 || len(s.dbs) == 1)) {
			return s.target.URL(p.dst), true
		}
	}
	return "", false
}

// Cleanup empties the scratch databases the drill restored into, key by
// key (SCAN and UNLINK, which work on a cluster too and where FLUSHDB is
// renamed away). A database holding more keys than the backup has
// another writer: it is left alone and the drill fails saying so.
func (s *redisScratch) Cleanup(ctx context.Context) ([]string, error) {
	var removed []string
	var errs []error
	for _, p := range s.dbs {
		if !p.claimed {
			continue
		}
		if s.protected[p.dst] {
			// Scratch never plans one; this guards the live data should it change.
			errs = append(errs, fmt.Errorf("database %d of %s belongs to store %s: not emptied", p.dst, s.target, s.env.Store.Name))
			continue
		}
		n, err := s.target.DBSize(ctx, p.dst)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > p.stats.Keys {
			errs = append(errs, fmt.Errorf("scratch database %d of %s holds %d keys, more than the %d the backup has: something else writes there, so it was not emptied (remove the restored keys by hand)", p.dst, s.target, n, p.stats.Keys))
			continue
		}
		var deleted int64
		err = s.eachKeys(ctx, p.dst, func(c *goredis.Client, keys []string) error {
			// One UNLINK per key: keys of one cluster node may lie in different slots.
			cmds, err := c.Pipelined(ctx, func(pl goredis.Pipeliner) error {
				for _, k := range keys {
					pl.Unlink(ctx, k)
				}
				return nil
			})
			for _, cmd := range cmds {
				deleted += cmd.(*goredis.IntCmd).Val()
			}
			return err
		})
		if err != nil {
			errs = append(errs, err)
		}
		if left, err := s.target.DBSize(ctx, p.dst); err == nil && left > 0 {
			errs = append(errs, fmt.Errorf("%d keys still in database %d of %s", left, p.dst, s.target))
		}
		removed = append(removed, fmt.Sprintf("%d keys in database %d of %s", deleted, p.dst, s.target))
	}
	return removed, errors.Join(errs...)
}

func (redisKind) History(prev, cur *repo.Manifest, maxShrink float64) ([]drillreport.HistoryFinding, error) {
	_, ps, err := redis.DecodeManifest(prev)
	if err != nil {
		return nil, err
	}
	_, cs, err := redis.DecodeManifest(cur)
	if err != nil {
		return nil, err
	}
	now := map[int]int64{}
	present := map[int]bool{}
	for _, d := range cs.Databases {
		now[d.DB], present[d.DB] = d.Keys, true
	}
	var out []drillreport.HistoryFinding
	for _, d := range ps.Databases {
		if f, ok := judgeShrink(prev, cur, counted{fmt.Sprintf("db%d", d.DB), "database", "keys", d.Keys, now[d.DB], present[d.DB]}, maxShrink); ok {
			out = append(out, f)
		}
	}
	return out, nil
}
