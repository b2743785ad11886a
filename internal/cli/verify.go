package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var storeName, repoName string
	var latest bool
	cmd := &cobra.Command{
		Use:   "verify [ID]",
		Short: "Read backups back and prove they are intact and restorable",
		Long: `verify reads every artifact of a backup from the repository, checks its stored
and plaintext SHA-256 and sizes against the manifest, decrypts and
decompresses it (age authenticates every 64 KiB chunk), and runs the kind's
own reader over it (pg_restore --list for PostgreSQL dumps; for Redis, a
full parse of the RESP stream with every value's own CRC-64 and the key
counts of the manifest, or an RDB file's header and CRC-64).

Without an ID, or with --latest, it verifies the newest backup of every store
(or of --store). Exit 13 on any damage, 12 on a wrong or missing key.`,
		Example: "  linkdr verify\n  linkdr verify --latest --store users-db\n  linkdr verify 20261126T061500Z-3fa2 -o json",
		Args:    maxArgs(1, "one backup id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && latest {
				return usagef("give a backup ID or --latest, not both")
			}
			r, err := g.runner()
			if err != nil {
				return err
			}
			if _, err := r.Identities(); err != nil {
				return err
			}
			ctx := cmd.Context()
			rp, err := r.OpenRepo(ctx, repoName)
			if err != nil {
				return err
			}
			defer rp.Close()
			var targets []*repo.Manifest
			if len(args) == 1 {
				m, err := rp.Backup(ctx, args[0])
				if err != nil {
					return err
				}
				targets = append(targets, m)
			} else {
				stores := r.Plan.StoreNames()
				if storeName != "" {
					if _, err := r.StoreConfig(storeName); err != nil {
						return err
					}
					stores = []string{storeName}
				}
				for _, s := range stores {
					m, err := rp.Latest(ctx, s, "")
					if err != nil {
						return err
					}
					targets = append(targets, m)
				}
			}
			var results []ops.VerifyResult
			var first error
			for _, m := range targets {
				res, err := r.Verify(ctx, rp, m)
				results = append(results, res)
				if err != nil && first == nil {
					first = fmt.Errorf("backup %s: %w", m.ID, err)
				}
				if ctx.Err() != nil {
					break
				}
			}
			if g.json() {
				if err := printJSON(g.stdout, results); err != nil {
					return err
				}
			} else {
				t := newTable(g.stdout, "BACKUP", "STORE", "ARTIFACTS", "STORED", "DURATION", "RESULT")
				for _, v := range results {
					result := "OK"
					if !v.OK {
						result = "FAILED"
					}
					t.row(v.ID, v.Store, v.Artifacts, sizeOf(v.Bytes), v.Duration.Round(time.Millisecond), result)
				}
				t.flush()
			}
			return first
		},
	}
	cmd.Flags().BoolVar(&latest, "latest", false, "verify the newest backup of each store (the default without ID)")
	cmd.Flags().StringVar(&storeName, "store", "", "only this store")
	cmd.Flags().StringVar(&repoName, "repo", "", "repository of the plan (default primary)")
	return cmd
}
