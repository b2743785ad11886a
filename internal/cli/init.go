package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/envelope"
)

type initOptions struct {
	keyFile     string
	repoURL     string
	postgresURL string
	name        string
}

func newInitCmd(g *globals) *cobra.Command {
	o := &initOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starter plan and a fresh age key pair",
		Long: `init writes a starter plan (the --config path, ./linkdr.yaml by default) and a
new age key pair. The public key goes into the plan: backing up needs no
secret. The private key goes into its own file with mode 0600: only restore
and verify need it, so keep a copy somewhere safe outside the systems it
protects (a password manager, a safe). Existing files are never overwritten.`,
		Example: `  linkdr init
  linkdr init --postgres-url postgres://postgres@db:5432/postgres --repo-url s3://backups/linkdr?region=us-east-1
  linkdr --config /etc/linkdr/linkdr.yaml init --key-file /etc/linkdr/age.key`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error { return runInit(g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.keyFile, "key-file", "", "where to write the private key (default: linkdr-age.key beside the plan)")
	f.StringVar(&o.repoURL, "repo-url", "./linkdr-repo", "primary repository: a directory or s3://bucket/prefix?region=…")
	f.StringVar(&o.postgresURL, "postgres-url", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL server of the example store")
	f.StringVar(&o.name, "name", "link", "name of the system the plan protects")
	return cmd
}

var starterPlan = template.Must(template.New("plan").Parse(`# linkdr plan: what to protect, where backups go, and the promises to keep.
# Check it with 'linkdr plan check'; every key is documented in docs/plan.md.
version: 1
name: {{.Name}}

# The promises of the DR plan. status, metrics and plan check measure
# against them.
objectives:
  rto: 4h            # longest acceptable time to recover
  rpo: 1h            # most data (in time) that may be lost
  availability: "99.9%"
  retention: 7y      # how long backups must stay restorable

# Backups are encrypted to these age public keys: backing up needs no
# secret. The private key (identity_file, or LINKDR_AGE_IDENTITY_FILE) is
# needed only to restore and verify. Keep a copy of it off these systems.
encryption:
  recipients:
    - {{.Recipient}}
  identity_file: {{.KeyFile}}

# Where backups live. primary is used unless a store names another.
# s3://bucket/prefix?region=us-east-1 (add &endpoint=…&use_path_style=true
# for S3-compatible servers) takes credentials from the usual AWS variables.
repositories:
  primary:
    url: {{.RepoURL}}

stores:
  users-db:
    kind: postgres
    # Secrets via ${ENV} references or password_file, never inline.
    url: {{.PostgresURL}}
    databases: []          # empty: every database except templates
    backups:
      - method: logical    # pg_dump per database
        schedule: "*/30 * * * *"

# Grandfather-father-son retention per store and method. The newest backup
# and any backup with retain_until in the future are never deleted.
retention:
  keep_last: 3
  keep_hourly: 48
  keep_daily: 35
  keep_weekly: 12
  keep_monthly: 24
  keep_yearly: 7
`))

func runInit(g *globals, o *initOptions) error {
	planPath := g.config
	keyPath := o.keyFile
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(planPath), "linkdr-age.key")
	}
	for _, p := range []string{planPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists: init never overwrites (hint: move it away, or use --config / --key-file for new paths)", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	kp, err := envelope.GenerateKeyPair()
	if err != nil {
		return err
	}
	keyInPlan := keyPath
	if rel, err := filepath.Rel(filepath.Dir(planPath), keyPath); err == nil && !filepath.IsAbs(o.keyFile) {
		keyInPlan = "./" + rel
	}
	var buf bytes.Buffer
	if err := starterPlan.Execute(&buf, map[string]string{
		"Name": o.name, "Recipient": kp.Recipient, "KeyFile": keyInPlan, "RepoURL": o.repoURL, "PostgresURL": o.postgresURL,
	}); err != nil {
		return err
	}
	if err := writeNew(keyPath, kp.IdentityFile(time.Now().UTC().Format(time.RFC3339)), 0o600); err != nil {
		return err
	}
	if err := writeNew(planPath, buf.Bytes(), 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	if g.json() {
		return printJSON(g.stdout, map[string]string{"plan": planPath, "identity_file": keyPath, "recipient": kp.Recipient})
	}
	fmt.Fprintf(g.stdout, "wrote %s\nwrote %s (private key, mode 0600: keep a copy somewhere safe)\npublic key: %s\nnext: edit the plan, then 'linkdr plan check' and 'linkdr repo init'\n", planPath, keyPath, kp.Recipient)
	return nil
}

// writeNew creates a file that must not exist yet.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
