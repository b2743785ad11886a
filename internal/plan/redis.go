package plan

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// checkRedis validates what is particular to kind redis: the URL's host
// list and parameters, and the database numbers. The store package reads
// the same URL; this reports problems at plan check time, with lines.
func (p *Plan) checkRedis(ps *problems, base string, s *Store) {
	raw := s.URL.Reveal()
	_, rest, ok := strings.Cut(raw, "://")
	if !ok || raw == "" {
		return // reported by the generic URL check
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	hosts, tail := rest[:end], rest[end:]
	if i := strings.LastIndex(hosts, "@"); i >= 0 {
		hosts = hosts[i+1:]
	}
	const hint = "redis://host:6379, or for a cluster redis://node1:6379,node2:6379 (or one node and ?cluster=true)"
	nhosts := 0
	for _, h := range strings.Split(hosts, ",") {
		nhosts++
		if h == "" {
			ps.add(base+".url", hint, "empty host in the host list")
			continue
		}
		if _, port, err := net.SplitHostPort(h); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				ps.add(base+".url", hint, "bad port in %q", h)
			}
		}
	}
	u, err := url.Parse("redis://placeholder" + tail)
	if err != nil {
		ps.add(base+".url", hint, "invalid URL")
		return
	}
	if strings.Trim(u.Path, "/") != "" {
		ps.add(base+".url", "list database numbers under databases: instead", "a store URL names no database (got %q)", u.Path)
	}
	cluster := nhosts > 1
	for k, v := range u.Query() {
		switch {
		case k != "cluster":
			ps.add(base+".url", "the only parameter is cluster=true|false", "unknown parameter %q", k)
		case v[len(v)-1] == "true":
			cluster = true
		case v[len(v)-1] != "false":
			ps.add(base+".url", "cluster=true or cluster=false; without it linkdr asks the server", "cluster=%q", v[len(v)-1])
		}
	}
	for i, d := range s.Databases {
		n, err := strconv.Atoi(d)
		path := fmt.Sprintf("%s.databases[%d]", base, i)
		switch {
		case err != nil || n < 0:
			ps.add(path, "Redis databases are numbers: databases: [0, 1]", "%q is not a database number", d)
		case cluster && n != 0:
			ps.add(path, "remove databases: for a cluster", "Redis Cluster has only database 0")
		}
	}
}
