package plan

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
)

// kindSchema is what the plan accepts for one store kind. Kind packages
// implement the behaviour; the plan owns the shape of the file.
type kindSchema struct {
	methods    []string
	urlSchemes []string
	fields     []string // kind-specific keys of Store
	// hostList: the URL may list several hosts (redis://a:1,[::1]:2),
	// which url.Parse rejects; the kind's own check reads it.
	hostList bool
}

var kinds = map[string]kindSchema{
	"postgres": {
		methods:    []string{"logical", "physical"},
		urlSchemes: []string{"postgres", "postgresql"},
		fields:     []string{"databases", "pg_bin_dir", "wal"},
	},
	"redis": {
		methods:    []string{"resp", "rdb"},
		urlSchemes: []string{"redis"},
		fields:     []string{"databases"},
		hostList:   true,
	},
	"qdrant": {
		methods:    []string{"snapshot"},
		urlSchemes: []string{"http", "https", "qdrant"},
		fields:     []string{"collections", "api_key", "api_key_file", "nodes"},
	},
	"s3": {
		methods:    []string{"objects"},
		urlSchemes: []string{"s3"},
		fields:     []string{"replica"},
	},
}

// kindSpecificFields lists every key that belongs to some kind only.
func kindSpecificFields() map[string]bool {
	out := map[string]bool{}
	for _, k := range kinds {
		for _, f := range k.fields {
			out[f] = true
		}
	}
	return out
}

// Kinds lists the store kinds the plan accepts.
func Kinds() []string { return sortedKeys(kinds) }

var repoSchemes = []string{"file", "s3", "mem"}

// s3Params are the query parameters of s3:// repository URLs (the
// repository package reads them).
var s3Params = []string{"region", "endpoint", "use_path_style", "profile"}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} in the fields that may hold secrets or
// per-environment values. A reference to an unset variable is an error:
// an empty password or host is never what the operator meant.
func (p *Plan) expandEnv(ps *problems) {
	expand := func(path, s string) string {
		return envRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v, ok := os.LookupEnv(name)
			if !ok {
				ps.add(path, "export "+name+" before running linkdr, or remove the reference", "environment variable %s is not set", name)
			}
			return v
		})
	}
	for _, name := range p.RepositoryNames() {
		r := p.Repositories[name]
		r.URL = expand("repositories."+name+".url", r.URL)
		p.Repositories[name] = r
	}
	for _, name := range p.StoreNames() {
		if s := p.Stores[name]; s != nil {
			s.URL = Secret(expand("stores."+name+".url", s.URL.Reveal()))
			s.APIKey = Secret(expand("stores."+name+".api_key", s.APIKey.Reveal()))
			if s.Replica != nil {
				s.Replica.URL = expand("stores."+name+".replica.url", s.Replica.URL)
			}
			for i, n := range s.Nodes {
				s.Nodes[i] = expand(fmt.Sprintf("stores.%s.nodes[%d]", name, i), n)
			}
		}
	}
	p.expandCheckEnv(expand)
	p.expandDrillEnv(expand)
	p.expandNotificationEnv(expand)
}

func (p *Plan) validate(ps *problems) {
	if p.Version != 1 {
		ps.add("version", "this linkdr reads version 1", "unsupported version %d", p.Version)
	}
	if strings.TrimSpace(p.Name) == "" {
		ps.add("name", "name the system the plan protects, e.g. name: link", "required")
	}
	p.validateObjectives(ps)
	p.validateEncryption(ps)
	p.validateRepositories(ps)
	p.validateStores(ps)
	p.validateRetention(ps)
	p.validateCopies(ps)
	p.validateServe(ps)
	p.validateChecks(ps)
	p.validateDrills(ps)
	p.validateDocument(ps)
	p.validateOperations(ps)
	p.validateScenarios(ps)
}

func (p *Plan) validateObjectives(ps *problems) {
	o := p.Objectives
	if o.RTO <= 0 {
		ps.add("objectives.rto", "e.g. rto: 4h", "must be positive")
	}
	if o.RPO <= 0 {
		ps.add("objectives.rpo", "e.g. rpo: 1h", "must be positive")
	}
	if o.Availability != "" {
		if _, err := ParseAvailability(o.Availability); err != nil {
			ps.add("objectives.availability", `e.g. availability: "99.9%"`, "%v", err)
		}
	}
}

// ParseAvailability parses "99.9%" into 0.999.
func ParseAvailability(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v <= 0 || v > 100 {
		return 0, fmt.Errorf("invalid availability %q: want a percentage between 0 and 100", s)
	}
	return v / 100, nil
}

func (p *Plan) validateEncryption(ps *problems) {
	e := p.Encryption
	if len(e.Recipients) == 0 {
		ps.add("encryption.recipients", "run `linkdr init` for a key pair, or `age-keygen` and paste its public key", "at least one age recipient (public key) is required")
	}
	for i, r := range e.Recipients {
		if _, err := envelope.ParseRecipients([]string{r}); err != nil {
			ps.add(fmt.Sprintf("encryption.recipients[%d]", i), "public keys start with age1 and come from age-keygen or `linkdr init`", "not an age public key: %q", r)
		}
	}
	if e.IdentityFile == "" {
		ps.warn("encryption", "restore and verify will need LINKDR_AGE_IDENTITY_FILE", "no identity_file set")
	}
	if e.CompressionLevel < 1 || e.CompressionLevel > 4 {
		ps.add("encryption.compression_level", "1 is fastest, 4 smallest; the default 2 matches zstd -3", "must be between 1 and 4, got %d", e.CompressionLevel)
	}
}

func (p *Plan) validateRepositories(ps *problems) {
	if len(p.Repositories) == 0 {
		ps.add("repositories", `e.g. repositories: {primary: {url: "file:///var/lib/linkdr/repo"}}`, "at least one repository is required")
		return
	}
	if _, ok := p.Repositories[DefaultRepository]; !ok {
		ps.add("repositories", "stores back up into the repository named primary unless they name another", "no repository named %q", DefaultRepository)
	}
	for _, name := range p.RepositoryNames() {
		path := "repositories." + name + ".url"
		r := p.Repositories[name]
		norm, err := NormalizeRepositoryURL(r.URL, p.Dir())
		if err != nil {
			ps.add(path, "use file:///absolute/dir, a relative directory like ./repo, or s3://bucket/prefix?region=…", "%v", err)
			continue
		}
		r.URL = norm
		p.Repositories[name] = r
		p.validateObjectLock(ps, "repositories."+name, r)
	}
}

// NormalizeRepositoryURL turns a plain or relative directory into a file://
// URL (relative to base) and checks the scheme of everything else.
func NormalizeRepositoryURL(raw, base string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", fmt.Errorf("required")
	}
	if !strings.Contains(raw, "://") {
		dir := raw
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		return (&url.URL{Scheme: "file", Path: abs}).String(), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q: %v", raw, err)
	}
	if !contains(repoSchemes, u.Scheme) {
		return "", fmt.Errorf("unsupported repository scheme %q (supported: %s)", u.Scheme, strings.Join(repoSchemes, ", "))
	}
	if u.Scheme == "file" && (u.Host != "" || u.Path == "") {
		return "", fmt.Errorf("file URL %q must be file:///absolute/path (three slashes)", raw)
	}
	if u.Scheme == "s3" && u.Host == "" {
		return "", fmt.Errorf("%s URL %q has no bucket", u.Scheme, raw)
	}
	if u.Scheme == "s3" {
		for k := range u.Query() {
			if !contains(s3Params, k) {
				return "", fmt.Errorf("unknown S3 URL parameter %q (known: %s)", k, strings.Join(s3Params, ", "))
			}
		}
	}
	return raw, nil
}

func (p *Plan) validateStores(ps *problems) {
	if len(p.Stores) == 0 {
		ps.warn("stores", "add the databases to protect under stores:", "no stores: nothing is protected")
	}
	specific := kindSpecificFields()
	for _, name := range p.StoreNames() {
		base := "stores." + name
		s := p.Stores[name]
		if s == nil {
			ps.add(base, "give the store a kind, url and backups", "empty store")
			continue
		}
		if !validName(name) {
			ps.add(base, "use lowercase letters, digits and dashes, like users-db", "invalid store name %q", name)
		}
		schema, ok := kinds[s.Kind]
		if !ok {
			if s.Kind == "" {
				ps.add(base+".kind", "kinds: "+strings.Join(Kinds(), ", "), "required")
			} else {
				ps.add(base+".kind", "kinds: "+strings.Join(Kinds(), ", "), "unknown kind %q", s.Kind)
			}
			continue
		}
		for f := range specific {
			if _, set := p.positions[base+"."+f]; set && !contains(schema.fields, f) {
				ps.add(base+"."+f, "remove it, or check the kind", "%s does not apply to kind %s", f, s.Kind)
			}
		}
		if _, ok := p.Repositories[s.Repository]; !ok && len(p.Repositories) > 0 {
			ps.add(base+".repository", "repositories: "+strings.Join(p.RepositoryNames(), ", "), "no repository named %q", s.Repository)
		}
		p.validateStoreURL(ps, base, s, schema)
		p.validateKindFields(ps, base, s)
		if s.PasswordFile != "" {
			if _, err := os.Stat(p.Resolve(s.PasswordFile)); err != nil {
				ps.warn(base+".password_file", "create it (mode 0600) before the first backup", "cannot read %s", p.Resolve(s.PasswordFile))
			}
		}
		if len(s.Backups) == 0 {
			ps.add(base+".backups", "e.g. backups: [{method: "+schema.methods[0]+", schedule: \"*/30 * * * *\"}]", "at least one backup method is required")
		}
		for i, b := range s.Backups {
			bp := fmt.Sprintf("%s.backups[%d]", base, i)
			if !contains(schema.methods, b.Method) {
				ps.add(bp+".method", "methods for "+s.Kind+": "+strings.Join(schema.methods, ", "), "unknown method %q", b.Method)
			}
		}
		if s.WAL != nil && s.Kind == "postgres" {
			p.validateWAL(ps, base, s)
		}
		p.validateRPO(ps, base, s)
	}
}

func (p *Plan) validateStoreURL(ps *problems, base string, s *Store, schema kindSchema) {
	raw := s.URL.Reveal()
	if raw == "" {
		ps.add(base+".url", "e.g. "+schema.urlSchemes[0]+"://user@host:port/", "required")
		return
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		ps.add(base+".url", "e.g. "+schema.urlSchemes[0]+"://user@host:port/", "not a URL")
		return
	}
	if !schema.hostList {
		if _, err := url.Parse(raw); err != nil {
			ps.add(base+".url", "check for unescaped characters in the password; better keep it in password_file", "invalid URL")
			return
		}
	}
	if !contains(schema.urlSchemes, scheme) {
		ps.add(base+".url", "kind "+s.Kind+" takes "+strings.Join(schema.urlSchemes, "://, ")+"://", "scheme %q does not match kind %s", scheme, s.Kind)
	}
}

// validateRPO checks that the most frequent scheduled backup fits the
// store's RPO: longer is an error (the objective cannot be met), equal or
// close is a warning (a backup takes time too, so data written right after
// one is exposed for the interval plus the next backup's duration).
//
// A store with continuous WAL (archive or stream) next to a scheduled
// physical backup is protected up to its last archived WAL, not its last
// backup: the backup schedule then bounds restore time, not data loss.
func (p *Plan) validateRPO(ps *problems, base string, s *Store) {
	rpo := p.StoreRPO(s).D()
	if s.WAL != nil && hasScheduledMethod(s, "physical") {
		if s.WAL.Mode == WALStream && s.WAL.PartialInterval.D() >= rpo {
			ps.add(base+".wal.partial_interval", fmt.Sprintf("upload more often than every %s", Duration(rpo)), "RPO %s cannot be met: stream mode uploads the current segment every %s", Duration(rpo), s.WAL.PartialInterval)
		}
		return
	}
	var best time.Duration
	bestSpec := ""
	for i, b := range s.Backups {
		if b.Schedule.IsZero() {
			if _, set := p.positions[fmt.Sprintf("%s.backups[%d].schedule", base, i)]; set {
				return // the schedule itself is invalid and already reported
			}
			continue
		}
		iv := b.Schedule.MaxInterval(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if best == 0 || iv < best {
			best, bestSpec = iv, b.Schedule.Spec
		}
	}
	switch {
	case best == 0:
		ps.warn(base+".backups", "add schedule: to a backup so `linkdr serve` runs it", "no backup is scheduled, so the RPO of %s is not protected", Duration(rpo))
	case best > rpo:
		ps.add(base+".backups", fmt.Sprintf("schedule backups at least every %s", Duration(rpo)), "RPO %s cannot be met: schedule %q leaves gaps of up to %s", Duration(rpo), bestSpec, Duration(best))
	case float64(best) > 0.9*float64(rpo):
		ps.warn(base+".backups", fmt.Sprintf("schedule more often than every %s to leave room for the backup itself", Duration(rpo)), "schedule %q leaves gaps of %s against an RPO of %s: data written just after a backup stays unprotected for the gap plus the next backup's duration", bestSpec, Duration(best), Duration(rpo))
	}
}

func (p *Plan) validateRetention(ps *problems) {
	r := p.Retention
	vals := map[string]int{"keep_last": r.KeepLast, "keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily, "keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly}
	total := 0
	for _, k := range sortedKeys(vals) {
		if vals[k] < 0 {
			ps.add("retention."+k, "use 0 to disable a rule", "must not be negative")
		}
		total += vals[k]
	}
	if total == 0 {
		ps.add("retention", "keep at least keep_last: 1", "every rule is 0: retention would keep only the newest backup of each store")
	}
	reach := max(time.Duration(r.KeepHourly)*time.Hour, time.Duration(r.KeepDaily)*day,
		time.Duration(r.KeepWeekly)*week, time.Duration(r.KeepMonthly)*31*day, time.Duration(r.KeepYearly)*year)
	if obj := p.Objectives.Retention.D(); obj > 0 && reach < obj {
		ps.warn("retention", fmt.Sprintf("raise keep_yearly to %d", int((obj+year-1)/year)), "the oldest backup retention keeps is about %s old, less than objectives.retention %s", Duration(reach), p.Objectives.Retention)
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validName limits names to what is safe in object keys, metrics labels and
// Kubernetes resource names.
func validName(s string) bool { return nameRE.MatchString(s) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasScheduledMethod(s *Store, method string) bool {
	for _, b := range s.Backups {
		if b.Method == method && !b.Schedule.IsZero() {
			return true
		}
	}
	return false
}

func (p *Plan) validateWAL(ps *problems, base string, s *Store) {
	w := s.WAL
	path := base + ".wal"
	switch w.Mode {
	case WALArchive, WALStream:
	case "":
		ps.add(path+".mode", "archive (archive_command = 'linkdr wal-push %p') or stream (linkdr wal-receive)", "required")
	default:
		ps.add(path+".mode", "archive (archive_command = 'linkdr wal-push %p') or stream (linkdr wal-receive)", "unknown mode %q", w.Mode)
	}
	physical := false
	for _, b := range s.Backups {
		physical = physical || b.Method == "physical"
	}
	if !physical {
		ps.add(path, `add {method: physical, schedule: "@daily"} to backups`, "WAL is replayed on top of a physical base backup, but the store has no physical backup method")
	}
	if !slotRE.MatchString(w.Slot) {
		ps.add(path+".slot", "lowercase letters, digits and underscores, at most 63", "invalid replication slot name %q", w.Slot)
	}
	if d := w.PartialInterval.D(); d < 100*time.Millisecond || d > time.Hour {
		ps.add(path+".partial_interval", "e.g. 2s", "must be between 100ms and 1h, got %s", w.PartialInterval)
	}
	if *w.Prefetch < 0 || *w.Prefetch > 64 {
		ps.add(path+".prefetch", "0 turns prefetch off; 8 suits most links", "must be between 0 and 64, got %d", *w.Prefetch)
	}
}

var slotRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
