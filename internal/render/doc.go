// Package render is a small document model — headings, paragraphs, lists,
// tables, code, charts — written out as Markdown or as one self-contained
// HTML file (inline CSS and SVG, no scripts, no external assets, so it
// opens from a mail attachment or an air-gapped laptop). The plan
// document and the reports build a Doc; render decides how it looks.
package render
