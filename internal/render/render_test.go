package render

import (
	"bytes"
	"strings"
	"testing"
)

func TestInline(t *testing.T) {
	for in, want := range map[string]string{
		"**a** and `b`":  "<strong>a</strong> and <code>b</code>",
		"x < y & **z**":  "x &lt; y &amp; <strong>z</strong>",
		"odd ** mark":    "odd ** mark",
		"**a** **b** **": "<strong>a</strong> <strong>b</strong> **",
	} {
		if got := inline(in); got != want {
			t.Errorf("inline(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMarkdownAndHTML(t *testing.T) {
	d := &Doc{Title: "T <1>", Subtitle: "sub"}
	d.H(1, "one", "One")
	d.P("para with | pipe")
	d.Add(Table{Header: []string{"a", "b"}, Rows: [][]string{{"x|y", "OK"}, {"z", "FAILED because"}}})
	d.Add(List{Items: []string{"i1", "i2"}, Checkbox: true}, Code{Lang: "bash", Text: "echo <hi>"}, Note{Text: "careful"})
	d.Add(Chart{Caption: "c", SVG: Bars([]Bar{{Label: "s", Value: 2, Limit: 1, Text: "2 of 1"}})})
	var md, html bytes.Buffer
	if err := d.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if err := d.HTML(&html); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# T <1>", "## One", "| x\\|y | OK |", "- [ ] i1", "```bash\necho <hi>\n```", "> careful", "*Chart: c"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	for _, want := range []string{"<title>T &lt;1&gt;</title>", `<section id="one">`, `<td class="ok">OK</td>`, `<td class="bad">FAILED because</td>`,
		"echo &lt;hi&gt;", `fill="#cf222e"`, "</section>\n</main>"} {
		if !strings.Contains(html.String(), want) {
			t.Errorf("html lacks %q", want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.25: "250ms", 42: "42.0s", 754: "12m34s", 3 * 3600: "3h00m", 3 * 86400: "3d00h"} {
		if got := Seconds(v); got != want {
			t.Errorf("Seconds(%v) = %q, want %q", v, got, want)
		}
	}
}
