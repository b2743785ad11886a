package testenv

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Page is what headless Chromium made of an HTML file.
type Page struct {
	// DOM is the document after parsing and layout (--dump-dom).
	DOM string
	// Screenshot is the rendered page.
	Screenshot image.Image
	// Problems are the lines of Chromium's log about the page itself:
	// console messages, failed loads, script errors. Chromium's noise
	// about D-Bus, GPUs and sandboxes on a headless server is left out.
	Problems []string
}

var pageProblem = regexp.MustCompile(`(?i)CONSOLE|Uncaught|net::ERR_|Failed to load|Refused to|Not allowed to load|ERR_FILE_NOT_FOUND|mixed content`)

// Chromium opens file in Debian's headless chromium twice — once to dump
// the DOM, once for a width×height screenshot — each with a fresh profile
// and no network helpers, and fails the test when Chromium fails.
func Chromium(t testing.TB, file string, width, height int) Page {
	t.Helper()
	bin := Bin(t, "chromium")
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) (stdout, log string) {
		t.Helper()
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(),
			"--enable-logging=stderr", "--v=0"}, extra...)
		args = append(args, "file://"+abs)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("testenv: chromium %s: %v\n%s", strings.Join(extra, " "), err, tail(errb.String(), 3000))
		}
		return out.String(), errb.String()
	}
	var p Page
	var log1, log2 string
	p.DOM, log1 = run("--dump-dom")
	shot := filepath.Join(t.TempDir(), "page.png")
	_, log2 = run("--screenshot="+shot, "--window-size="+itoa(width)+","+itoa(height), "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("testenv: chromium wrote no screenshot: %v\n%s", err, tail(log2, 3000))
	}
	defer f.Close()
	if p.Screenshot, err = png.Decode(f); err != nil {
		t.Fatalf("testenv: screenshot: %v", err)
	}
	for _, line := range strings.Split(log1+"\n"+log2, "\n") {
		if pageProblem.MatchString(line) {
			p.Problems = append(p.Problems, line)
		}
	}
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// CheckScreenshot fails the test unless the screenshot has the size asked
// for and shows a page with content: mostly white paper, with enough dark
// (text) and coloured pixels that something was drawn.
func CheckScreenshot(t testing.TB, p Page, width, height int) {
	t.Helper()
	b := p.Screenshot.Bounds()
	if b.Dx() != width || b.Dy() != height {
		t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	var white, dark, total int
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := p.Screenshot.At(x, y).RGBA()
			lum := (299*r + 587*g + 114*bl) / 1000 >> 8
			switch {
			case lum > 240:
				white++
			case lum < 100:
				dark++
			}
			total++
		}
	}
	if white < total/2 || dark < total/200 {
		t.Fatalf("screenshot does not look like a rendered page: %d%% white, %.2f%% dark", 100*white/total, 100*float64(dark)/float64(total))
	}
}
