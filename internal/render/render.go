package render

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// Doc is a document: a title and blocks in order.
type Doc struct {
	Title    string
	Subtitle string
	Blocks   []Block
}

// Block is one element of a document.
type Block interface{ block() }

// Heading starts a section; ID becomes the HTML anchor (and the section's
// id attribute, which tests and links rely on).
type Heading struct {
	Level int
	Text  string
	ID    string
}

// Para is a paragraph of plain text; **bold** spans are kept in both forms.
type Para struct{ Text string }

// List is a bulleted (or numbered, or checkbox) list.
type List struct {
	Items    []string
	Numbered bool
	Checkbox bool
}

// Table has a header row and rows of cells. Status cells (OK, FAILED, …)
// are coloured in HTML.
type Table struct {
	Header []string
	Rows   [][]string
}

// Code is preformatted text.
type Code struct {
	Lang string
	Text string
}

// Chart is an inline SVG (HTML only; Markdown gets its caption).
type Chart struct {
	Caption string
	SVG     string
}

// Note is a highlighted remark (a warning, a missing part).
type Note struct{ Text string }

func (Heading) block() {}
func (Para) block()    {}
func (List) block()    {}
func (Table) block()   {}
func (Code) block()    {}
func (Chart) block()   {}
func (Note) block()    {}

// Add appends blocks.
func (d *Doc) Add(b ...Block) { d.Blocks = append(d.Blocks, b...) }

// H adds a heading.
func (d *Doc) H(level int, id, format string, args ...any) {
	d.Add(Heading{Level: level, ID: id, Text: fmt.Sprintf(format, args...)})
}

// P adds a paragraph.
func (d *Doc) P(format string, args ...any) { d.Add(Para{Text: fmt.Sprintf(format, args...)}) }

// Markdown writes the document as GitHub-flavoured Markdown.
func (d *Doc) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	if d.Subtitle != "" {
		fmt.Fprintf(&b, "%s\n\n", d.Subtitle)
	}
	for _, bl := range d.Blocks {
		switch x := bl.(type) {
		case Heading:
			fmt.Fprintf(&b, "%s %s\n\n", strings.Repeat("#", x.Level+1), x.Text)
		case Para:
			fmt.Fprintf(&b, "%s\n\n", x.Text)
		case Note:
			fmt.Fprintf(&b, "> %s\n\n", strings.ReplaceAll(x.Text, "\n", "\n> "))
		case List:
			for i, it := range x.Items {
				switch {
				case x.Checkbox:
					fmt.Fprintf(&b, "- [ ] %s\n", it)
				case x.Numbered:
					fmt.Fprintf(&b, "%d. %s\n", i+1, it)
				default:
					fmt.Fprintf(&b, "- %s\n", it)
				}
			}
			b.WriteString("\n")
		case Table:
			b.WriteString("| " + strings.Join(mdCells(x.Header), " | ") + " |\n")
			b.WriteString("|" + strings.Repeat("---|", len(x.Header)) + "\n")
			for _, r := range x.Rows {
				b.WriteString("| " + strings.Join(mdCells(r), " | ") + " |\n")
			}
			b.WriteString("\n")
		case Code:
			fmt.Fprintf(&b, "```%s\n%s\n```\n\n", x.Lang, strings.TrimRight(x.Text, "\n"))
		case Chart:
			if x.Caption != "" {
				fmt.Fprintf(&b, "*Chart: %s (see the HTML version).*\n\n", x.Caption)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(c, "|", `\|`), "\n", " ")
	}
	return out
}

// HTML writes the document as one self-contained HTML page.
func (d *Doc) HTML(w io.Writer) error {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	fmt.Fprintf(&b, "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", esc(d.Title), css)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(d.Title))
	if d.Subtitle != "" {
		fmt.Fprintf(&b, "<p class=\"subtitle\">%s</p>\n", inline(d.Subtitle))
	}
	// A table of contents from the top-level sections.
	var toc []Heading
	for _, bl := range d.Blocks {
		if h, ok := bl.(Heading); ok && h.Level == 1 && h.ID != "" {
			toc = append(toc, h)
		}
	}
	if len(toc) > 2 {
		b.WriteString("<nav><ol>\n")
		for _, h := range toc {
			fmt.Fprintf(&b, "<li><a href=\"#%s\">%s</a></li>\n", esc(h.ID), esc(h.Text))
		}
		b.WriteString("</ol></nav>\n")
	}
	open := false
	for _, bl := range d.Blocks {
		switch x := bl.(type) {
		case Heading:
			if x.Level == 1 {
				if open {
					b.WriteString("</section>\n")
				}
				fmt.Fprintf(&b, "<section id=\"%s\">\n", esc(x.ID))
				open = true
			}
			id := ""
			if x.ID != "" && x.Level > 1 {
				id = fmt.Sprintf(" id=\"%s\"", esc(x.ID))
			}
			fmt.Fprintf(&b, "<h%d%s>%s</h%d>\n", x.Level+1, id, esc(x.Text), x.Level+1)
		case Para:
			fmt.Fprintf(&b, "<p>%s</p>\n", inline(x.Text))
		case Note:
			fmt.Fprintf(&b, "<p class=\"note\">%s</p>\n", inline(x.Text))
		case List:
			tag := "ul"
			if x.Numbered {
				tag = "ol"
			}
			cls := ""
			if x.Checkbox {
				cls = " class=\"checklist\""
			}
			fmt.Fprintf(&b, "<%s%s>\n", tag, cls)
			for _, it := range x.Items {
				box := ""
				if x.Checkbox {
					box = "<span class=\"box\">&#9744;</span> "
				}
				fmt.Fprintf(&b, "<li>%s%s</li>\n", box, inline(it))
			}
			fmt.Fprintf(&b, "</%s>\n", tag)
		case Table:
			b.WriteString("<table>\n<thead><tr>")
			for _, h := range x.Header {
				fmt.Fprintf(&b, "<th>%s</th>", esc(h))
			}
			b.WriteString("</tr></thead>\n<tbody>\n")
			for _, r := range x.Rows {
				b.WriteString("<tr>")
				for _, c := range r {
					fmt.Fprintf(&b, "<td%s>%s</td>", statusClass(c), inline(c))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</tbody>\n</table>\n")
		case Code:
			fmt.Fprintf(&b, "<pre><code>%s</code></pre>\n", esc(strings.TrimRight(x.Text, "\n")))
		case Chart:
			fmt.Fprintf(&b, "<figure>%s<figcaption>%s</figcaption></figure>\n", x.SVG, esc(x.Caption))
		}
	}
	if open {
		b.WriteString("</section>\n")
	}
	b.WriteString("</main>\n</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

// inline escapes text and keeps **bold** and `code` spans.
func inline(s string) string {
	out := esc(s)
	out = replacePairs(out, "**", "<strong>", "</strong>")
	out = replacePairs(out, "`", "<code>", "</code>")
	return out
}

func replacePairs(s, mark, open, close string) string {
	parts := strings.Split(s, mark)
	pairs := (len(parts) - 1) / 2
	if pairs == 0 {
		return s
	}
	var b strings.Builder
	for i, p := range parts {
		switch {
		case i == 0:
		case i > 2*pairs:
			b.WriteString(mark) // an unpaired mark stays as it is
		case i%2 == 1:
			b.WriteString(open)
		default:
			b.WriteString(close)
		}
		b.WriteString(p)
	}
	return b.String()
}

// statusClass colours cells that state an outcome.
func statusClass(c string) string {
	switch strings.ToUpper(strings.SplitN(c, " ", 2)[0]) {
	case "OK", "PASS", "PASSED", "YES", "MET":
		return ` class="ok"`
	case "AT", "WARN", "WARNING", "MANUAL":
		return ` class="warn"`
	case "FAILED", "FAIL", "BREACHED", "ERROR", "NO", "MISSED", "UNKNOWN", "LOST":
		return ` class="bad"`
	}
	return ""
}

const css = `
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--muted:#57606a;--line:#d0d7de}
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;background:#fff;margin:0}
main{max-width:1080px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:22px;border-bottom:1px solid var(--line);padding-bottom:4px;margin-top:36px}
h3{font-size:17px;margin-top:24px}h4{font-size:15px}
.subtitle{color:var(--muted);margin-top:0}
nav ol{columns:2;color:var(--muted)}nav a{color:#0969da;text-decoration:none}
table{border-collapse:collapse;width:100%;margin:12px 0;font-size:14px}
th,td{border:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.ok{color:var(--ok);font-weight:600}td.warn{color:var(--warn);font-weight:600}td.bad{color:var(--bad);font-weight:600}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:10px;overflow-x:auto;font-size:13px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:90%}
.note{border-left:4px solid var(--warn);background:#fff8c5;padding:8px 12px}
ul.checklist{list-style:none;padding-left:8px}.box{font-size:16px;color:var(--muted)}
figure{margin:16px 0}figcaption{color:var(--muted);font-size:13px}
svg text{font:12px -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;fill:#1f2328}
@media print{main{max-width:none}nav{display:none}}
`
