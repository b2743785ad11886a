package plan

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// validateObjectLock checks repositories.X.object_lock: it only exists on
// S3, and a zero or negative period would lock nothing while claiming to.
func (p *Plan) validateObjectLock(ps *problems, base string, r Repository) {
	ol := r.ObjectLock
	if ol == nil {
		return
	}
	path := base + ".object_lock"
	if u, err := url.Parse(r.URL); err == nil && u.Scheme != "s3" {
		ps.add(path, "Object Lock is an S3 feature: use an s3:// repository in a bucket created with Object Lock enabled", "not supported for %s repositories", u.Scheme)
	}
	switch strings.ToLower(ol.Mode) {
	case "governance", "compliance":
		ol.Mode = strings.ToLower(ol.Mode)
	case "":
		ps.add(path+".mode", "governance can be lifted by a privileged user, compliance by nobody", "required")
	default:
		ps.add(path+".mode", "use governance or compliance", "unknown mode %q", ol.Mode)
	}
	if ol.Days < 1 {
		ps.add(path+".days", "e.g. days: 30 (each object stays locked that long after its backup started)", "must be at least 1, got %d", ol.Days)
	}
	if obj := p.Objectives.Retention.D(); ol.Days > 0 && obj > 0 && float64(ol.Days)*float64(day) > float64(obj) {
		ps.warn(path+".days", "locks longer than the retention objective keep backups (and their cost) past it", "%d days is longer than objectives.retention %s", ol.Days, p.Objectives.Retention)
	}
}

// validateKindFields checks the fields that belong to one kind.
func (p *Plan) validateKindFields(ps *problems, base string, s *Store) {
	switch s.Kind {
	case "redis":
		p.checkRedis(ps, base, s)
	case "qdrant":
		if s.APIKey != "" && s.APIKeyFile != "" {
			ps.add(base+".api_key", "keep one: api_key_file is better (the key stays out of the plan)", "api_key and api_key_file are both set")
		}
		if s.APIKeyFile != "" {
			if _, err := os.Stat(p.Resolve(s.APIKeyFile)); err != nil {
				ps.warn(base+".api_key_file", "create it (mode 0600) before the first backup", "cannot read %s", p.Resolve(s.APIKeyFile))
			}
		}
		for i, n := range s.Nodes {
			u, err := url.Parse(n)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "qdrant") || u.Host == "" {
				ps.add(fmt.Sprintf("%s.nodes[%d]", base, i), "each node is the REST URL of one Qdrant peer, e.g. http://qdrant-1:6333", "invalid node URL %q", n)
			}
		}
		for i, c := range s.Collections {
			if strings.TrimSpace(c) == "" || strings.ContainsAny(c, "/") {
				ps.add(fmt.Sprintf("%s.collections[%d]", base, i), "collection names have no slashes", "invalid collection name %q", c)
			}
		}
	case "s3":
		if u, err := url.Parse(s.URL.Reveal()); err == nil && u.Scheme == "s3" && u.Host == "" {
			ps.add(base+".url", "e.g. s3://link-media/uploads?region=us-west-2", "no bucket in %q", s.URL.String())
		}
		if s.Replica != nil {
			u, err := url.Parse(s.Replica.URL)
			switch {
			case s.Replica.URL == "":
				ps.add(base+".replica.url", "the replica bucket, e.g. s3://link-media-dr/uploads?region=us-east-1", "required")
			case err != nil || u.Scheme != "s3" || u.Host == "":
				ps.add(base+".replica.url", "e.g. s3://link-media-dr/uploads?region=us-east-1", "invalid replica URL %q", s.Replica.URL)
			}
		}
	}
}
