package redis

import (
	"context"
	"net/url"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/repo"
)

// Deployment is a connected Redis deployment — a standalone server or a
// cluster's masters — for code around the store (restore drills) that
// reads and writes keys with the store's own URL rules and credentials.
type Deployment struct {
	ep   *endpoint
	topo *topology
}

// Connect reads a Redis URL the way the store does (a database number
// may follow the hosts) and finds its masters. passwordFile is read when
// the URL has no password.
func Connect(ctx context.Context, raw, passwordFile string) (*Deployment, error) {
	ep, err := parseEndpoint(raw, passwordFile, true)
	if err != nil {
		return nil, err
	}
	topo, err := ep.discover(ctx)
	if err != nil {
		return nil, err
	}
	return &Deployment{ep: ep, topo: topo}, nil
}

// Cluster says whether the deployment is a Redis Cluster (database 0 only).
func (d *Deployment) Cluster() bool { return d.topo.cluster }

// DB is the database the URL names, -1 when none.
func (d *Deployment) DB() int { return d.ep.db }

// String is the deployment's URL without the password.
func (d *Deployment) String() string { return d.ep.String() }

// Addrs are the masters' addresses.
func (d *Deployment) Addrs() []string {
	var out []string
	for _, m := range d.topo.masters {
		out = append(out, m.Addr)
	}
	return out
}

// Client is a client of database db: a plain one for a standalone
// server, a cluster client (routing by slot) for a cluster.
func (d *Deployment) Client(db int) goredis.UniversalClient {
	if d.topo.cluster {
		return goredis.NewClusterClient(d.ep.clusterOptions())
	}
	return goredis.NewClient(d.ep.options(d.topo.masters[0].Addr, db))
}

// NodeClients are clients of database db on each master, for commands
// that work node by node (SCAN, DBSIZE).
func (d *Deployment) NodeClients(db int) []*goredis.Client {
	var out []*goredis.Client
	for _, m := range d.topo.masters {
		out = append(out, goredis.NewClient(d.ep.options(m.Addr, db)))
	}
	return out
}

// DBSize counts the keys of database db over every master.
func (d *Deployment) DBSize(ctx context.Context, db int) (int64, error) {
	return (&restoreTarget{ep: d.ep, topo: d.topo}).dbSize(ctx, db)
}

// Databases is how many databases the standalone server has (CONFIG GET
// databases; 16, the default, when CONFIG is not allowed). A cluster has 1.
func (d *Deployment) Databases(ctx context.Context) int {
	if d.topo.cluster {
		return 1
	}
	c := goredis.NewClient(d.ep.options(d.topo.masters[0].Addr, 0))
	defer c.Close()
	if v, err := c.ConfigGet(ctx, "databases").Result(); err == nil {
		if n, err := strconv.Atoi(v["databases"]); err == nil && n > 0 {
			return n
		}
	}
	return 16
}

// URL is the deployment's URL naming database db, with the password in
// it: for restore targets and checks, never for reports or logs. A
// cluster's URL names its first master and no database.
func (d *Deployment) URL(db int) string {
	u := url.URL{Scheme: "redis", Host: d.topo.masters[0].Addr}
	switch {
	case d.ep.password != "":
		u.User = url.UserPassword(d.ep.username, d.ep.password)
	case d.ep.username != "":
		u.User = url.User(d.ep.username)
	}
	if d.topo.cluster {
		u.RawQuery = "cluster=true"
	} else {
		u.Path = "/" + strconv.Itoa(db)
	}
	return u.String()
}

// Scrub removes the password from an error message.
func (d *Deployment) Scrub(err error) error { return d.ep.scrub(err) }

// DecodeManifest reads a redis manifest's source and stats.
func DecodeManifest(m *repo.Manifest) (Source, Stats, error) { return decodeManifest(m) }
