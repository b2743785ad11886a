package plan

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is matched (errors.Is) by every *InvalidError.
var ErrInvalid = errors.New("invalid plan")

// Problem is one finding about a plan file: an error, or a warning that
// does not stop the plan from being used.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	Warning bool   `json:"warning,omitempty"`
}

// String renders "file:line: path: message (hint: …)".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// InvalidError carries every error found in a plan.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	if len(lines) == 1 {
		return "invalid plan: " + lines[0]
	}
	return fmt.Sprintf("invalid plan: %d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// nodeError reports a bad value the way yaml.v3 reports type errors, so the
// decoder collects it with its line and carries on with the rest.
func nodeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))}}
}

// problems is an accumulator used while loading and validating.
type problems struct {
	file string
	pos  map[string]int
	list []Problem
}

func (ps *problems) add(path, hint, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: ps.line(path), Path: path, Message: fmt.Sprintf(format, args...), Hint: hint})
}

func (ps *problems) warn(path, hint, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: ps.line(path), Path: path, Message: fmt.Sprintf(format, args...), Hint: hint, Warning: true})
}

// line finds the line of path, or of its nearest ancestor that exists.
func (ps *problems) line(path string) int {
	for p := path; p != ""; {
		if l, ok := ps.pos[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (ps *problems) split() (errs, warns []Problem) {
	for _, p := range ps.list {
		if p.Warning {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	return errs, warns
}
