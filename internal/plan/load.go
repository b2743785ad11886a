package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, defaults and validates a plan file. It returns the
// warnings even when the plan is valid. Every error found is in the
// returned *InvalidError.
func Load(path string) (*Plan, []Problem, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, &InvalidError{Problems: []Problem{{
			File: path, Message: "plan file not found",
			Hint: "create one with `linkdr init`, or point --config / LINKDR_CONFIG at it",
		}}}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load on bytes already read; name is used in messages and to
// resolve relative paths.
func Parse(name string, data []byte) (*Plan, []Problem, error) {
	ps := &problems{file: name, pos: map[string]int{}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		ps.list = append(ps.list, yamlSyntaxProblem(name, err))
		return nil, nil, &InvalidError{Problems: ps.list}
	}
	if root.Kind == 0 {
		ps.add("", "start from `linkdr init`", "the plan file is empty")
		return nil, nil, &InvalidError{Problems: ps.list}
	}
	positions(&root, "", ps.pos)

	p := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			ps.list = append(ps.list, yamlSyntaxProblem(name, err))
			return nil, nil, &InvalidError{Problems: ps.list}
		}
		for _, msg := range te.Errors {
			ps.list = append(ps.list, typeErrorProblem(name, msg, &root))
		}
	}
	p.Path = name
	p.positions = ps.pos
	applyStoreDefaults(p)
	applyCheckDefaults(p)
	applyDrillDefaults(p)
	applyDocumentDefaults(p)
	p.expandEnv(ps)
	p.validate(ps)

	errs, warns := ps.split()
	if len(errs) > 0 {
		return nil, warns, &InvalidError{Problems: errs}
	}
	return p, warns, nil
}

// Dir is the directory relative paths in the plan are resolved against.
func (p *Plan) Dir() string { return filepath.Dir(p.Path) }

// Resolve makes a path from the plan relative to the plan file.
func (p *Plan) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(p.Dir(), path)
}

// Line reports where path ("stores.users-db.url") is in the file, or 0.
func (p *Plan) Line(path string) int { return p.positions[path] }

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
var columnRE = regexp.MustCompile(`^column (\d+): (.*)$`)

func yamlSyntaxProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return Problem{File: file, Line: line, Message: "YAML syntax: " + msg, Hint: "check indentation and quoting around this line"}
}

func typeErrorProblem(file, msg string, root *yaml.Node) Problem {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{File: file, Message: msg}
	}
	line, _ := strconv.Atoi(m[1])
	text := m[2]
	if f := unknownFieldRE.FindStringSubmatch(text); f != nil {
		path := findKey(root, "", line, f[1])
		hint := ""
		if known := knownKeys(f[2]); len(known) > 0 {
			hint = "valid keys here: " + strings.Join(known, ", ")
			if s := closest(f[1], known); s != "" {
				hint = fmt.Sprintf("did you mean %q? ", s) + hint
			}
		}
		return Problem{File: file, Line: line, Path: path, Message: fmt.Sprintf("unknown key %q", f[1]), Hint: hint}
	}
	col := 0
	if c := columnRE.FindStringSubmatch(text); c != nil { // from nodeError
		col, _ = strconv.Atoi(c[1])
		text = c[2]
	}
	text = strings.Replace(text, "cannot unmarshal !!", "expected a different type, got !!", 1)
	return Problem{File: file, Line: line, Path: findValue(root, "", line, col), Message: text}
}

// positions records the line of every mapping value and sequence item.
func positions(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			positions(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := join(path, k.Value)
			out[p] = k.Line
			positions(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			positions(c, p, out)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// findKey returns the path of the mapping key named key on line.
func findKey(n *yaml.Node, path string, line int, key string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := findKey(c, path, line, key); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := join(path, k.Value)
			if k.Line == line && k.Value == key {
				return p
			}
			if r := findKey(n.Content[i+1], p, line, key); r != "" {
				return r
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if r := findKey(c, fmt.Sprintf("%s[%d]", path, i), line, key); r != "" {
				return r
			}
		}
	}
	return ""
}

// findValue returns the path of the scalar value at line and column, or of
// the first one on the line when col is 0.
func findValue(n *yaml.Node, path string, line, col int) string {
	at := func(v *yaml.Node) bool {
		return v.Line == line && (col == 0 || v.Column == col) && v.Kind == yaml.ScalarNode
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := findValue(c, path, line, col); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			v := n.Content[i+1]
			if at(v) {
				return p
			}
			if r := findValue(v, p, line, col); r != "" {
				return r
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if at(c) {
				return p
			}
			if r := findValue(c, p, line, col); r != "" {
				return r
			}
		}
	}
	return ""
}

// knownKeys lists the YAML keys of a plan type named as yaml.v3 names it
// ("plan.Store").
func knownKeys(typeName string) []string {
	t, ok := planTypes()[typeName]
	if !ok {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	sort.Strings(keys)
	return keys
}

// planTypes indexes every struct type reachable from Plan by its
// package-qualified name.
func planTypes() map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeOf(Plan{}).PkgPath() {
			return
		}
		name := t.String()
		if _, seen := out[name]; seen {
			return
		}
		out[name] = t
		for i := 0; i < t.NumField(); i++ {
			walk(t.Field(i).Type)
		}
	}
	walk(reflect.TypeOf(Plan{}))
	return out
}

// closest returns the known key within edit distance 2 of s, if any.
func closest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
