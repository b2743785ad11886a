package plan

import (
	"fmt"
	"sort"
	"strings"
)

// paramType is the shape a step parameter takes in the plan.
type paramType int

const (
	tString     paramType = iota
	tInt                  // a whole number
	tBool                 // true or false
	tDuration             // 90s, 15m
	tList                 // a list of strings (a single string is a list of one)
	tMap                  // a mapping of names to strings
	tAny                  // a mapping, list or string (manifests, patches)
	tStringList           // a string or a list of strings
)

func (t paramType) String() string {
	return [...]string{"a string", "a whole number", "true or false", "a duration such as 90s or 15m",
		"a list of strings", "a mapping of names to strings", "a value", "a string or a list of strings"}[t]
}

// param describes one parameter of an action.
type param struct {
	name     string
	typ      paramType
	required bool
	enum     []string // allowed values, for strings
}

// actionSchema is what the plan accepts for one action. The behaviour
// lives in internal/action; the plan owns the shape of the file, as it
// does for store kinds, so `plan check` needs no action code.
type actionSchema struct {
	params []param
	// oneOf: exactly one of these parameters must be set.
	oneOf []string
}

var kubeParams = []param{
	{name: "context", typ: tString}, {name: "kubeconfig", typ: tString}, {name: "namespace", typ: tString},
}

var kubeTargets = []param{
	{name: "name", typ: tString}, {name: "names", typ: tList}, {name: "selector", typ: tString},
}

func with(groups ...[]param) []param {
	var out []param
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var scalable = []string{"deployment", "statefulset", "replicaset"}

var actionSchemas = map[string]actionSchema{
	"shell": {params: []param{
		{name: "command", typ: tString}, {name: "args", typ: tList}, {name: "env", typ: tMap},
		{name: "dir", typ: tString}, {name: "secrets", typ: tList}, {name: "shell", typ: tString},
	}, oneOf: []string{"command", "args"}},
	"k8s.scale": {params: with(kubeParams, kubeTargets, []param{
		{name: "kind", typ: tString, enum: scalable}, {name: "replicas", typ: tInt, required: true},
	}), oneOf: []string{"name", "names", "selector"}},
	"k8s.patch": {params: with(kubeParams, []param{
		{name: "kind", typ: tString, required: true}, {name: "api_version", typ: tString},
		{name: "name", typ: tString, required: true}, {name: "patch", typ: tAny, required: true},
		{name: "type", typ: tString, enum: []string{"merge", "strategic", "json"}},
	})},
	"k8s.apply": {params: with(kubeParams, []param{
		{name: "manifest", typ: tAny}, {name: "file", typ: tString}, {name: "files", typ: tList},
		{name: "field_manager", typ: tString}, {name: "force", typ: tBool},
	}), oneOf: []string{"manifest", "file", "files"}},
	"k8s.rollout-wait": {params: with(kubeParams, kubeTargets, []param{
		{name: "kind", typ: tString, enum: scalable}, {name: "interval", typ: tDuration},
	}), oneOf: []string{"name", "names", "selector"}},
	"k8s.delete": {params: with(kubeParams, kubeTargets, []param{
		{name: "kind", typ: tString, required: true}, {name: "api_version", typ: tString},
		{name: "force", typ: tBool}, {name: "ignore_missing", typ: tBool},
	}), oneOf: []string{"name", "names", "selector"}},
	"dns.failover": {params: []param{
		{name: "provider", typ: tString, required: true}, {name: "record", typ: tString, required: true},
		{name: "type", typ: tString, enum: []string{"A", "AAAA", "CNAME", "TXT"}},
		{name: "to", typ: tStringList, required: true}, {name: "from", typ: tStringList},
		{name: "ttl", typ: tInt}, {name: "verify", typ: tBool}, {name: "interval", typ: tDuration},
	}},
	"restore": {params: []param{
		{name: "store", typ: tString, required: true}, {name: "backup", typ: tString},
		{name: "before", typ: tString}, {name: "target", typ: tString}, {name: "select", typ: tList},
		{name: "force", typ: tBool}, {name: "verify", typ: tBool}, {name: "jobs", typ: tInt},
		{name: "repository", typ: tString}, {name: "method", typ: tString},
	}},
	"http.wait": {params: []param{
		{name: "url", typ: tString, required: true}, {name: "method", typ: tString}, {name: "body", typ: tString},
		{name: "headers", typ: tMap}, {name: "status", typ: tInt}, {name: "contains", typ: tString},
		{name: "interval", typ: tDuration}, {name: "insecure", typ: tBool}, {name: "ca_file", typ: tString},
	}},
	"check": {params: []param{
		{name: "name", typ: tString}, {name: "http", typ: tString}, {name: "tcp", typ: tString},
		{name: "status", typ: tInt}, {name: "contains", typ: tString},
		{name: "expect", typ: tString, enum: []string{"up", "down"}},
		{name: "interval", typ: tDuration}, {name: "insecure", typ: tBool},
	}, oneOf: []string{"name", "http", "tcp"}},
	"notify": {params: []param{
		{name: "channel", typ: tString}, {name: "channels", typ: tList}, {name: "template", typ: tString},
		{name: "message", typ: tString}, {name: "status", typ: tString}, {name: "impact", typ: tString},
		{name: "issue", typ: tString}, {name: "root_cause", typ: tString},
		{name: "event", typ: tString, enum: []string{"trigger", "acknowledge", "resolve", "info"}},
	}},
	"approve": {params: []param{{name: "message", typ: tString}, {name: "approvers", typ: tList}}},
	"wait":    {params: []param{{name: "duration", typ: tDuration, required: true}, {name: "message", typ: tString}}},
}

// Actions lists the step actions the plan accepts.
func Actions() []string { return sortedKeys(actionSchemas) }

// ActionParams lists the parameter names an action accepts.
func ActionParams(action string) []string {
	var out []string
	for _, p := range actionSchemas[action].params {
		out = append(out, p.name)
	}
	sort.Strings(out)
	return out
}

// templated reports whether a value is only known at run time.
func templated(v any) bool {
	s, ok := v.(string)
	return ok && (strings.Contains(s, "{{") || strings.Contains(s, "${"))
}

func (p *Plan) validateAction(ps *problems, sp string, st *Step) {
	if st.Action == "" {
		ps.add(sp+".action", "actions: "+strings.Join(Actions(), ", "), "required")
		return
	}
	schema, ok := actionSchemas[st.Action]
	if !ok {
		hint := "actions: " + strings.Join(Actions(), ", ")
		if s := closest(st.Action, Actions()); s != "" {
			hint = fmt.Sprintf("did you mean %q? ", s) + hint
		}
		ps.add(sp+".action", hint, "unknown action %q", st.Action)
		return
	}
	known := map[string]param{}
	for _, pa := range schema.params {
		known[pa.name] = pa
	}
	for _, k := range sortedKeys(st.With) {
		pa, ok := known[k]
		path := sp + ".with." + k
		if !ok {
			names := ActionParams(st.Action)
			hint := st.Action + " takes: " + strings.Join(names, ", ")
			if s := closest(k, names); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s) + hint
			}
			ps.add(path, hint, "unknown parameter %q for action %s", k, st.Action)
			continue
		}
		if msg := checkType(pa, st.With[k]); msg != "" {
			ps.add(path, "expected "+pa.typ.String(), "%s", msg)
		}
	}
	for _, pa := range schema.params {
		if _, set := st.With[pa.name]; pa.required && !set {
			ps.add(sp+".with", fmt.Sprintf("add with.%s (%s)", pa.name, pa.typ), "action %s needs parameter %q", st.Action, pa.name)
		}
	}
	if len(schema.oneOf) > 0 {
		n := 0
		for _, k := range schema.oneOf {
			if _, set := st.With[k]; set {
				n++
			}
		}
		if n != 1 {
			ps.add(sp+".with", "set exactly one of: "+strings.Join(schema.oneOf, ", "), "action %s needs exactly one of %s, got %d", st.Action, strings.Join(schema.oneOf, ", "), n)
		}
	}
	p.validateRefs(ps, sp, st)
}

func checkType(pa param, v any) string {
	if templated(v) {
		return ""
	}
	switch pa.typ {
	case tString:
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("%s: want a string, got %v", pa.name, v)
		}
		if len(pa.enum) > 0 && !contains(pa.enum, s) && !contains(pa.enum, strings.ToLower(s)) {
			return fmt.Sprintf("%s: %q is not one of %s", pa.name, s, strings.Join(pa.enum, ", "))
		}
	case tInt:
		if _, ok := v.(int); !ok {
			return fmt.Sprintf("%s: want a whole number, got %v", pa.name, v)
		}
	case tBool:
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("%s: want true or false, got %v", pa.name, v)
		}
	case tDuration:
		s, ok := v.(string)
		if !ok {
			return fmt.Sprintf("%s: want a duration such as 30s, got %v", pa.name, v)
		}
		if _, err := ParseDuration(s); err != nil {
			return fmt.Sprintf("%s: %v", pa.name, err)
		}
	case tList, tStringList:
		switch x := v.(type) {
		case string:
		case []any:
			for _, e := range x {
				switch e.(type) {
				case string, int, bool:
				default:
					return fmt.Sprintf("%s: list items must be strings, got %v", pa.name, e)
				}
			}
		default:
			return fmt.Sprintf("%s: want a list of strings, got %v", pa.name, v)
		}
	case tMap:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want a mapping, got %v", pa.name, v)
		}
		for k, e := range m {
			switch e.(type) {
			case string, int, bool, float64:
			default:
				return fmt.Sprintf("%s.%s: values must be strings, got %v", pa.name, k, e)
			}
		}
	}
	return ""
}

// stringsOf reads a string or list parameter that is not templated.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

// validateRefs checks parameters that name other parts of the plan.
func (p *Plan) validateRefs(ps *problems, sp string, st *Step) {
	ref := func(key string, names []string, what, section string) {
		v, ok := st.With[key]
		if !ok || templated(v) {
			return
		}
		for _, n := range stringsOf(v) {
			if templated(n) || contains(names, n) {
				continue
			}
			hint := "define it under " + section
			if len(names) > 0 {
				hint = what + "s: " + strings.Join(names, ", ")
			}
			ps.add(sp+".with."+key, hint, "no %s named %q", what, n)
		}
	}
	switch st.Action {
	case "dns.failover":
		ref("provider", sortedKeys(p.DNS.Providers), "DNS provider", "dns.providers")
	case "restore":
		ref("store", p.StoreNames(), "store", "stores")
		ref("repository", p.RepositoryNames(), "repository", "repositories")
		name, _ := st.With["store"].(string)
		if m, ok := st.With["method"].(string); ok && !templated(m) && p.Stores[name] != nil && !p.Stores[name].HasMethod(m) {
			ps.add(sp+".with.method", "store "+name+" is backed up by: "+strings.Join(p.Stores[name].Methods(), ", "), "store %s has no backup method %q", name, m)
		}
		if _, b := st.With["backup"]; b {
			if _, t := st.With["before"]; t {
				ps.add(sp+".with", "backup names one backup; before picks the newest one older than a time", "set backup or before, not both")
			}
		}
	case "notify":
		names := sortedKeys(p.Notifications.Channels)
		ref("channel", names, "channel", "notifications.channels")
		ref("channels", names, "channel", "notifications.channels")
		if t, ok := st.With["template"].(string); ok && !templated(t) {
			if _, known := p.Incidents.Templates[t]; !known {
				ps.add(sp+".with.template", "templates: "+strings.Join(sortedKeys(p.Incidents.Templates), ", "), "no template named %q", t)
			}
		}
		_, hasT := st.With["template"]
		_, hasM := st.With["message"]
		if !hasT && !hasM {
			ps.add(sp+".with", "template names one from incidents.templates (alert, update, resolved, reminder); message alone is an inline template", "notify needs template or message")
		}
		if _, c1 := st.With["channel"]; !c1 {
			if _, c2 := st.With["channels"]; !c2 && len(p.Incidents.Notify) == 0 {
				ps.add(sp+".with", "name a channel, or list default channels under incidents.notify", "no channel to notify")
			}
		}
	}
}
