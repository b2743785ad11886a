package retention

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// A golden case: input backups (testdata/NAME.json) and the expected
// decisions (testdata/NAME.golden).
type goldenCase struct {
	Policy Policy    `json:"policy"`
	Now    time.Time `json:"now"`
	// Series generates items: every Step from Start, Count times.
	Series []struct {
		Start time.Time `json:"start"`
		Step  string    `json:"step"`
		Count int       `json:"count"`
	} `json:"series"`
	// Items are listed explicitly.
	Items []Item `json:"items"`
}

func (c goldenCase) items(t *testing.T) []Item {
	items := append([]Item(nil), c.Items...)
	for _, s := range c.Series {
		step, err := time.ParseDuration(s.Step)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < s.Count; i++ {
			ts := s.Start.Add(time.Duration(i) * step)
			items = append(items, Item{ID: ts.Format("20060102T150405Z"), Time: ts})
		}
	}
	return items
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no golden cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c goldenCase
			if err := json.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			got := Apply(c.items(t), c.Policy, c.Now)
			var sb strings.Builder
			kept := 0
			for _, d := range got {
				mark := "remove"
				if d.Keep {
					mark = "keep  "
					kept++
				}
				sb.WriteString(mark + " " + d.ID + "  " + strings.Join(d.Reasons, ", ") + "\n")
			}
			sb.WriteString("kept " + itoa(kept) + " of " + itoa(len(got)) + "\n")
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				os.WriteFile(golden, []byte(sb.String()), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if sb.String() != string(want) {
				t.Errorf("decisions differ from %s:\n%s", golden, sb.String())
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// Invariants that must hold whatever the policy.
func TestNeverRemoveNewestOrHeld(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	items := []Item{
		{ID: "old-held", Time: now.Add(-400 * 24 * time.Hour), RetainUntil: now.Add(24 * time.Hour)},
		{ID: "old-expired-hold", Time: now.Add(-300 * 24 * time.Hour), RetainUntil: now.Add(-time.Hour)},
		{ID: "mid", Time: now.Add(-2 * time.Hour)},
		{ID: "newest", Time: now.Add(-time.Hour)},
	}
	got := map[string]bool{}
	for _, d := range Apply(items, Policy{}, now) {
		got[d.ID] = d.Keep
	}
	want := map[string]bool{"old-held": true, "old-expired-hold": false, "mid": false, "newest": true}
	for id, keep := range want {
		if got[id] != keep {
			t.Errorf("%s: keep=%v, want %v", id, got[id], keep)
		}
	}
	if len(Apply(nil, Policy{Last: 3}, now)) != 0 {
		t.Error("empty input")
	}
}
