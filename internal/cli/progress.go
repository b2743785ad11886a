package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/linkapp/linkdr/internal/ops"
)

// newProgress returns a progress reporter for long transfers, or nil when
// w is not a terminal: logs and pipes stay clean.
func newProgress(w io.Writer) ops.ProgressFunc {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(label string, total int64) ops.Progress {
		return &ttyProgress{w: w, label: label, total: total, start: time.Now()}
	}
}

// ttyProgress redraws one status line at most five times a second.
type ttyProgress struct {
	w     io.Writer
	label string
	total int64
	start time.Time

	mu   sync.Mutex
	n    int64
	last time.Time
}

func (p *ttyProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if time.Since(p.last) >= 200*time.Millisecond {
		p.last = time.Now()
		p.draw(false)
	}
}

func (p *ttyProgress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
}

func (p *ttyProgress) draw(final bool) {
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.n) / el
	}
	line := fmt.Sprintf("%s  %s  %s/s", p.label, sizeOf(p.n), sizeOf(int64(rate)))
	if p.total > 0 {
		pct := float64(p.n) * 100 / float64(p.total)
		line += fmt.Sprintf("  %.0f%%", pct)
		if rate > 0 && !final && p.n < p.total {
			eta := time.Duration(float64(p.total-p.n) / rate * float64(time.Second))
			line += "  ETA " + age(eta)
		}
	}
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r\033[K%s%s", line, end)
}
