package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/testenv"
)

const drillPlan = `version: 1
name: drill
encryption: {recipients: [%q]}
repositories: {primary: {url: ./repo}}
scenarios:
  drill:
    title: Kill and resume drill
    severity: low
    rto: 1h
    phases:
      - id: first
        budget: 20m
        steps:
          - {id: one, action: shell, with: {command: "echo one >> log"}}
          - id: two
            action: shell
            with: {command: "if [ ! -e second-try ]; then touch second-try; echo started > marker; sleep 60; fi; echo two >> log"}
      - id: second
        budget: 20m
        steps:
          - {id: three, action: shell, with: {command: "echo three >> log"}}
          - {id: gate, action: approve, with: {message: "go on?"}}
          - {id: four, action: shell, with: {command: "echo four >> log"}}
  broken:
    title: Fails
    severity: low
    phases:
      - id: only
        budget: 5m
        steps:
          - {id: fails, action: shell, with: {command: "echo failing; exit 4"}}
  preflight:
    title: Needs a tool that is not here
    severity: low
    phases:
      - id: only
        budget: 5m
        steps:
          - {id: tool, action: shell, with: {command: "no-such-tool-here --now"}}
`

func newRunbookEnv(t *testing.T) *cliEnv {
	t.Helper()
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	c := &cliEnv{t: t, bin: buildLinkdr(t), dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(c.dir, "linkdr.yaml"), fmt.Appendf(nil, drillPlan, kp.Recipient), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(os.Environ(), "LINKDR_CONFIG=linkdr.yaml", "LINKDR_STATE_DIR="+filepath.Join(c.dir, "state"), "LINKDR_USER=tester")
	if out, code := c.run("repo", "init"); code != 0 {
		t.Fatal(out)
	}
	return c
}

func (c *cliEnv) runs() []map[string]any {
	out, code := c.run("runbook", "status", "-o", "json")
	if code != 0 {
		c.t.Fatalf("runbook status: %d %s", code, out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):]), &list); err != nil {
		c.t.Fatalf("%v: %s", err, out)
	}
	return list
}

func (c *cliEnv) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name))
	return string(b)
}

// TestRunbookKillAndResume: kill -9 in the middle of a step, then resume:
// no finished step runs again, the killed one does; the approval gate
// pauses the run (exit 22) until `runbook approve`.
func TestRunbookKillAndResume(t *testing.T) {
	t.Parallel()
	c := newRunbookEnv(t)
	cmd := exec.Command(c.bin, "runbook", "run", "drill")
	cmd.Dir, cmd.Env = c.dir, c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := testenv.Poll(30*time.Second, func() error {
		if _, err := os.Stat(filepath.Join(c.dir, "marker")); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("step two never started: %v\n%s", err, out.String())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("not killed: %v", err)
	}
	runs := c.runs()
	if len(runs) != 1 || runs[0]["status"] != "interrupted" {
		t.Fatalf("after kill -9: %v", runs)
	}
	id := runs[0]["id"].(string)
	if got := c.file("log"); got != "one\n" {
		t.Fatalf("log after the kill: %q", got)
	}

	o, code := c.run("runbook", "resume", id)
	if code != ExitAwaitingApproval || !strings.Contains(o, "linkdr runbook approve "+id+" gate") {
		t.Fatalf("resume: exit %d, want %d (gate):\n%s", code, ExitAwaitingApproval, o)
	}
	if got := c.file("log"); got != "one\ntwo\nthree\n" {
		t.Fatalf("log after resume: %q (a finished step ran again, or the killed one did not)", got)
	}
	if o, code := c.run("runbook", "approve", id, "one"); code == 0 {
		t.Fatalf("approved a step that is no gate: %s", o)
	}
	if o, code := c.run("runbook", "approve", id[:len(runPrefix)+10], "gate", "--comment", "checked"); code != 0 || !strings.Contains(o, "runbook resume") {
		t.Fatalf("approve: exit %d %s", code, o)
	}
	if o, code := c.run("runbook", "resume", id); code != 0 || !strings.Contains(o, "SUCCEEDED") {
		t.Fatalf("resume after approval: exit %d\n%s", code, o)
	}
	if got := c.file("log"); got != "one\ntwo\nthree\nfour\n" {
		t.Fatalf("final log: %q", got)
	}
	if o, code := c.run("runbook", "resume", id); code == 0 {
		t.Fatalf("resumed a finished run: %s", o)
	}
	// The journal says so too: one start of step one, two of step two.
	b, err := os.ReadFile(filepath.Join(c.dir, "repo", "runs", id, "journal.jsonl"))
	if err != nil {
		t.Fatalf("no journal in the repository: %v", err)
	}
	starts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct{ Type, Step string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == "step.started" {
			starts[e.Step]++
		}
	}
	if starts["one"] != 1 || starts["two"] != 2 || starts["three"] != 1 || starts["four"] != 1 {
		t.Fatalf("step starts in the journal: %v", starts)
	}
}

// runPrefix starts run ids.
const runPrefix = "run-"

func TestRunbookExitCodes(t *testing.T) {
	t.Parallel()
	c := newRunbookEnv(t)
	// Step two of drill sleeps on its first try (for the kill test).
	if err := os.WriteFile(filepath.Join(c.dir, "second-try"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("Failed", func(t *testing.T) {
		o, code := c.run("runbook", "run", "broken")
		if code != ExitRunFailed || !strings.Contains(o, "exit 4: failing") {
			t.Fatalf("exit %d, want %d:\n%s", code, ExitRunFailed, o)
		}
	})
	t.Run("Aborted", func(t *testing.T) {
		before := len(c.runs())
		o, code := c.run("runbook", "run", "drill")
		if code != ExitAwaitingApproval {
			t.Fatalf("exit %d:\n%s", code, o)
		}
		runs := c.runs()
		if len(runs) != before+1 {
			t.Fatalf("runs %v", runs)
		}
		id := runs[0]["id"].(string)
		if o, code := c.run("runbook", "abort", id, "--comment", "false alarm"); code != 0 {
			t.Fatalf("abort: %d %s", code, o)
		}
		o, _ = c.run("runbook", "status", id)
		if !strings.Contains(o, "ABORTED") || !strings.Contains(o, "false alarm") {
			t.Fatalf("status after abort:\n%s", o)
		}
	})
	t.Run("DryRunPreconditions", func(t *testing.T) {
		before := len(c.runs())
		o, code := c.run("runbook", "run", "preflight", "--dry-run")
		if code != ExitFailure || !strings.Contains(o, "no-such-tool-here: not found on PATH") {
			t.Fatalf("exit %d:\n%s", code, o)
		}
		if after := len(c.runs()); after != before {
			t.Fatalf("the dry run left a run behind: %d → %d", before, after)
		}
	})
	t.Run("UnknownScenario", func(t *testing.T) {
		if o, code := c.run("runbook", "run", "regional"); code != ExitUsage || !strings.Contains(o, "scenarios: broken, drill, preflight") {
			t.Fatalf("exit %d:\n%s", code, o)
		}
	})
	t.Run("Help", func(t *testing.T) {
		o, _ := c.run("runbook", "run", "--help")
		for _, want := range []string{"Examples:", "--dry-run", "22   runbook run paused"} {
			if !strings.Contains(o, want) {
				t.Errorf("help lacks %q", want)
			}
		}
	})
}
