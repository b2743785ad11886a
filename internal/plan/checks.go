package plan

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Check is one validation probe plus the condition its observations must
// satisfy. Which keys apply depends on Type (see checkTypes); the plan
// rejects keys that do not belong to the type.
type Check struct {
	// Type: http, tls, dns, tcp, postgres, redis, qdrant, prometheus,
	// backup, kubernetes.
	Type        string `yaml:"type"`
	Description string `yaml:"description"`
	// Condition is an expression over the probe's variables (see
	// docs/checks.md), e.g. `status == 200 && latency < duration("500ms")`.
	// Empty means the type's default condition.
	Condition string `yaml:"condition"`
	// Timeout bounds the probe. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// Required checks fail `linkdr check`; optional ones only warn.
	// Default true.
	Required *bool `yaml:"required"`

	// http, postgres, redis, qdrant, prometheus: where to probe. For
	// postgres, redis and qdrant, store may name a plan store instead.
	URL Secret `yaml:"url"`
	// http
	Method             string            `yaml:"method"`
	Headers            map[string]string `yaml:"headers"`
	Body               string            `yaml:"body"`
	CAFile             string            `yaml:"ca_file"`
	InsecureSkipVerify bool              `yaml:"insecure_skip_verify"`
	// tls, tcp: host:port.
	Address    string `yaml:"address"`
	ServerName string `yaml:"server_name"`
	// dns: the name to resolve, the record type and the server to ask.
	Host   string `yaml:"host"`
	Record string `yaml:"record"`
	Server string `yaml:"server"`
	// postgres, redis, qdrant, backup: a store of the plan.
	Store string `yaml:"store"`
	// postgres: database to connect to (default: the URL's).
	Database string `yaml:"database"`
	// postgres (SQL) and prometheus (PromQL).
	Query string `yaml:"query"`
	// qdrant
	Collection string `yaml:"collection"`
	APIKey     Secret `yaml:"api_key"`
	// backup: also read the latest backup back now (slow but certain).
	Verify bool `yaml:"verify"`
	// kubernetes
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
	Namespace  string `yaml:"namespace"`
	Deployment string `yaml:"deployment"`

	// Name is the key under checks (not part of the YAML).
	Name string `yaml:"-"`
}

// IsRequired reports whether a failure of the check fails a checklist.
func (c *Check) IsRequired() bool { return c.Required == nil || *c.Required }

// EffectiveCondition is the condition that applies: the check's own or its
// type's default.
func (c *Check) EffectiveCondition() string {
	if strings.TrimSpace(c.Condition) != "" {
		return c.Condition
	}
	return checkTypes[c.Type].condition
}

// Checklist groups checks, as the plan's "Recovery Validation Checklist"
// groups its items. Items without checks are manual: they are listed (and
// rendered) but nothing runs for them.
type Checklist struct {
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	// Include runs other checklists as part of this one.
	Include []string        `yaml:"include"`
	Items   []ChecklistItem `yaml:"items"`

	// Name is the key under checklists (not part of the YAML).
	Name string `yaml:"-"`
}

// ChecklistItem is one line of a checklist and the checks that prove it.
type ChecklistItem struct {
	Text   string   `yaml:"text"`
	Checks []string `yaml:"checks"`
}

// DefaultCheckTimeout bounds a probe whose check sets no timeout.
const DefaultCheckTimeout = 10 * time.Second

// checkSchema is what the plan accepts for one check type, and the
// variables its condition sees (name → a sample value of the right Go
// type; the check package fills the same names).
type checkSchema struct {
	fields    []string
	required  [][]string // each inner list: at least one of these keys
	condition string     // default condition; "" means one is required
	vars      map[string]any
}

var commonVars = map[string]any{"latency": time.Duration(0)}

var checkTypes = map[string]checkSchema{
	"http": {
		fields:    []string{"url", "method", "headers", "body", "ca_file", "insecure_skip_verify"},
		required:  [][]string{{"url"}},
		condition: "status >= 200 && status < 400",
		vars:      map[string]any{"status": 0, "body": "", "headers": map[string]string{}, "json": any(nil)},
	},
	"tls": {
		fields:    []string{"address", "server_name", "ca_file"},
		required:  [][]string{{"address"}},
		condition: "valid && days_left >= 14",
		vars: map[string]any{"valid": false, "days_left": 0.0, "expires": time.Time{}, "subject": "", "issuer": "",
			"dns_names": []string{}, "verify_error": ""},
	},
	"dns": {
		fields:    []string{"host", "record", "server"},
		required:  [][]string{{"host"}},
		condition: `rcode == "NOERROR" && len(answers) > 0`,
		vars:      map[string]any{"rcode": "", "answers": []string{}, "ttl": 0, "authoritative": false},
	},
	"tcp": {
		fields:    []string{"address"},
		required:  [][]string{{"address"}},
		condition: "connected",
		vars:      map[string]any{"connected": false},
	},
	"postgres": {
		fields:    []string{"url", "store", "database", "query"},
		required:  [][]string{{"url", "store"}},
		condition: "connected",
		vars: map[string]any{"connected": false, "in_recovery": false, "replication_lag": time.Duration(0),
			"replicas": 0, "value": any(nil), "rows": 0, "server_version": ""},
	},
	"redis": {
		fields:    []string{"url", "store"},
		required:  [][]string{{"url", "store"}},
		condition: "pong",
		vars:      map[string]any{"pong": false, "role": "", "keys": 0, "connected_replicas": 0},
	},
	"qdrant": {
		fields:    []string{"url", "store", "collection", "api_key"},
		required:  [][]string{{"url", "store"}, {"collection"}},
		condition: `status == "green"`,
		vars:      map[string]any{"status": "", "points": 0, "segments": 0},
	},
	"prometheus": {
		fields:   []string{"url", "query"},
		required: [][]string{{"url"}, {"query"}},
		vars:     map[string]any{"value": 0.0, "samples": 0},
	},
	"backup": {
		fields:    []string{"store", "verify"},
		condition: "fresh",
		vars: map[string]any{"fresh": false, "exposure": time.Duration(0), "rpo": time.Duration(0), "state": "",
			"backups": 0, "verified": false, "verify_error": "", "drilled": false, "drill_age": time.Duration(0)},
	},
	"kubernetes": {
		fields:    []string{"kubeconfig", "context", "namespace", "deployment"},
		required:  [][]string{{"deployment"}},
		condition: "replicas > 0 && ready_replicas >= replicas",
		vars: map[string]any{"replicas": 0, "ready_replicas": 0, "available_replicas": 0, "updated_replicas": 0,
			"pods": 0, "zones": 0},
	},
}

// CheckTypes lists the check types the plan accepts.
func CheckTypes() []string { return sortedKeys(checkTypes) }

// CheckVars returns the variables a condition of the type can use, each
// with a zero value of its Go type. The check package compiles conditions
// against it, so plan check and check runs agree on every name.
func CheckVars(typ string) map[string]any {
	out := map[string]any{}
	for k, v := range commonVars {
		out[k] = v
	}
	for k, v := range checkTypes[typ].vars {
		out[k] = v
	}
	return out
}

// CheckStoreKind is the store kind a check type may name with store:
// ("" when the type takes any store or none).
func CheckStoreKind(typ string) string {
	switch typ {
	case "postgres", "redis", "qdrant":
		return typ
	}
	return ""
}

// ConditionEnv builds the environment a condition of the type is
// evaluated in: a struct with one field per variable, named by its expr
// tag. A struct rather than a map, so that variables whose sample is nil
// (json, value) are typed interface{} and checked when the condition runs,
// while all others are type-checked when the plan is loaded. Missing vars
// are zero.
func ConditionEnv(typ string, vars map[string]any) any {
	t := conditionType(typ)
	v := reflect.New(t).Elem()
	for i := 0; i < t.NumField(); i++ {
		if x, ok := vars[t.Field(i).Tag.Get("expr")]; ok && x != nil {
			v.Field(i).Set(reflect.ValueOf(x))
		}
	}
	return v.Interface()
}

func conditionType(typ string) reflect.Type {
	vars := CheckVars(typ)
	var fields []reflect.StructField
	for i, name := range sortedKeys(vars) {
		ft := reflect.TypeOf(vars[name])
		if ft == nil {
			ft = reflect.TypeOf((*any)(nil)).Elem()
		}
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("V%d", i), Type: ft, Tag: reflect.StructTag(`expr:"` + name + `"`),
		})
	}
	return reflect.StructOf(fields)
}

// CompileCondition type-checks a condition against a check type's
// variables; it must produce a bool.
func CompileCondition(typ, condition string) (*vm.Program, error) {
	return expr.Compile(condition, expr.Env(ConditionEnv(typ, nil)), expr.AsBool())
}

func checkFields() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(Check{})
	common := map[string]bool{"type": true, "description": true, "condition": true, "timeout": true, "required": true}
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" && !common[tag] {
			out[tag] = true
		}
	}
	return out
}

// CheckNames returns the check names in sorted order.
func (p *Plan) CheckNames() []string { return sortedKeys(p.Checks) }

// ChecklistNames returns the checklist names in sorted order.
func (p *Plan) ChecklistNames() []string { return sortedKeys(p.Checklists) }

// ChecklistChecks resolves a checklist (with its includes, depth first, each
// check once) into check names in order.
func (p *Plan) ChecklistChecks(name string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	visiting := map[string]bool{}
	var walk func(string, []string) error
	walk = func(n string, path []string) error {
		cl, ok := p.Checklists[n]
		if !ok || cl == nil {
			return fmt.Errorf("no checklist %q in %s (checklists: %s)", n, p.Path, strings.Join(p.ChecklistNames(), ", "))
		}
		if visiting[n] {
			return fmt.Errorf("checklists include each other: %s", strings.Join(append(path, n), " → "))
		}
		visiting[n] = true
		defer delete(visiting, n)
		for _, inc := range cl.Include {
			if err := walk(inc, append(path, n)); err != nil {
				return err
			}
		}
		for _, it := range cl.Items {
			for _, c := range it.Checks {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
		return nil
	}
	return out, walk(name, nil)
}

func applyCheckDefaults(p *Plan) {
	for name, c := range p.Checks {
		if c == nil {
			continue
		}
		c.Name = name
		if c.Timeout == 0 {
			c.Timeout = Duration(DefaultCheckTimeout)
		}
		if c.Type == "http" && c.Method == "" {
			c.Method = "GET"
		}
		if c.Type == "dns" && c.Record == "" {
			c.Record = "A"
		}
		if c.Type == "kubernetes" && c.Namespace == "" {
			c.Namespace = "default"
		}
	}
	for name, cl := range p.Checklists {
		if cl != nil {
			cl.Name = name
		}
	}
}

func (p *Plan) expandCheckEnv(expand func(path, s string) string) {
	for _, name := range p.CheckNames() {
		c := p.Checks[name]
		if c == nil {
			continue
		}
		base := "checks." + name
		c.URL = Secret(expand(base+".url", c.URL.Reveal()))
		c.APIKey = Secret(expand(base+".api_key", c.APIKey.Reveal()))
		for _, k := range sortedKeys(c.Headers) {
			c.Headers[k] = expand(base+".headers."+k, c.Headers[k])
		}
	}
}

var dnsRecords = []string{"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"}

func (p *Plan) validateChecks(ps *problems) {
	fields := checkFields()
	for _, name := range p.CheckNames() {
		base := "checks." + name
		c := p.Checks[name]
		if c == nil {
			ps.add(base, "give the check a type and its target", "empty check")
			continue
		}
		if !validName(name) {
			ps.add(base, "use lowercase letters, digits and dashes, like api-health", "invalid check name %q", name)
		}
		schema, ok := checkTypes[c.Type]
		if !ok {
			msg := "unknown check type %q"
			if c.Type == "" {
				msg = "required%.0s"
			}
			ps.add(base+".type", "types: "+strings.Join(CheckTypes(), ", "), msg, c.Type)
			continue
		}
		for _, f := range sortedKeys(fields) {
			if _, set := p.positions[base+"."+f]; set && !contains(schema.fields, f) {
				ps.add(base+"."+f, "keys of "+c.Type+" checks: "+strings.Join(schema.fields, ", "), "%s does not apply to %s checks", f, c.Type)
			}
		}
		for _, alts := range schema.required {
			set := false
			for _, f := range alts {
				_, set1 := p.positions[base+"."+f]
				set = set || set1
			}
			if !set {
				ps.add(base+"."+alts[0], checkExample(c.Type), "%s checks need %s", c.Type, strings.Join(alts, " or "))
			}
		}
		if c.Store != "" {
			s, ok := p.Stores[c.Store]
			switch {
			case !ok || s == nil:
				ps.add(base+".store", "stores: "+strings.Join(p.StoreNames(), ", "), "no store named %q", c.Store)
			case CheckStoreKind(c.Type) != "" && s.Kind != CheckStoreKind(c.Type):
				ps.add(base+".store", "name a store of kind "+c.Type+", or give url", "store %s is of kind %s, not %s", c.Store, s.Kind, c.Type)
			}
			if _, set := p.positions[base+".url"]; set {
				ps.add(base+".url", "keep one of them", "give url or store, not both")
			}
		}
		if c.Type == "dns" && !contains(dnsRecords, strings.ToUpper(c.Record)) {
			ps.add(base+".record", "records: "+strings.Join(dnsRecords, ", "), "unknown record type %q", c.Record)
		}
		if c.Type == "http" && c.URL != "" && !strings.HasPrefix(c.URL.Reveal(), "http://") && !strings.HasPrefix(c.URL.Reveal(), "https://") {
			ps.add(base+".url", "e.g. https://api.linkapp.com/health", "not an http(s) URL")
		}
		cond := c.EffectiveCondition()
		if strings.TrimSpace(cond) == "" {
			ps.add(base+".condition", `e.g. condition: "value < 0.01"`, "%s checks need a condition", c.Type)
			continue
		}
		if _, err := CompileCondition(c.Type, cond); err != nil {
			vars := sortedKeys(CheckVars(c.Type))
			ps.add(base+".condition", "variables of "+c.Type+" checks: "+strings.Join(vars, ", "), "invalid condition: %s", oneLine(err.Error()))
		}
	}
	for _, name := range p.ChecklistNames() {
		base := "checklists." + name
		cl := p.Checklists[name]
		if cl == nil {
			ps.add(base, "give the checklist items", "empty checklist")
			continue
		}
		if !validName(name) {
			ps.add(base, "use lowercase letters, digits and dashes, like post-recovery", "invalid checklist name %q", name)
		}
		for i, inc := range cl.Include {
			if _, ok := p.Checklists[inc]; !ok {
				ps.add(fmt.Sprintf("%s.include[%d]", base, i), "checklists: "+strings.Join(p.ChecklistNames(), ", "), "no checklist named %q", inc)
			}
		}
		for i, it := range cl.Items {
			ip := fmt.Sprintf("%s.items[%d]", base, i)
			if strings.TrimSpace(it.Text) == "" {
				ps.add(ip+".text", "say what the item proves, as in the plan document", "required")
			}
			for j, cn := range it.Checks {
				if _, ok := p.Checks[cn]; !ok {
					ps.add(fmt.Sprintf("%s.checks[%d]", ip, j), "checks: "+strings.Join(p.CheckNames(), ", "), "no check named %q", cn)
				}
			}
		}
		if len(cl.Items) == 0 && len(cl.Include) == 0 {
			ps.add(base, "add items: [{text: …, checks: [...]}] or include: [other checklists]", "checklist has no items")
		}
	}
	inCycle := map[string]bool{}
	for _, name := range p.ChecklistNames() {
		if _, err := p.ChecklistChecks(name); err != nil && strings.Contains(err.Error(), "include each other") && !inCycle[name] {
			ps.add("checklists."+name+".include", "remove one of the includes", "%v", err)
			for _, n := range strings.Split(strings.SplitN(err.Error(), ": ", 2)[1], " → ") {
				inCycle[n] = true
			}
		}
	}
}

func checkExample(typ string) string {
	switch typ {
	case "http":
		return "e.g. url: https://api.linkapp.com/health"
	case "tls", "tcp":
		return "e.g. address: api.linkapp.com:443"
	case "dns":
		return "e.g. host: api.linkapp.com, server: 10.0.0.2:53"
	case "postgres", "redis":
		return "e.g. store: users-db"
	case "qdrant":
		return "e.g. store: vectors, collection: posts"
	case "prometheus":
		return "e.g. url: http://prometheus:9090, query: sum(rate(http_requests_total[5m]))"
	case "kubernetes":
		return "e.g. namespace: link-services, deployment: api-gateway"
	}
	return ""
}

func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[0])
}
