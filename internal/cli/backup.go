package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/repo"
)

func newBackupCmd(g *globals) *cobra.Command {
	var method string
	cmd := &cobra.Command{
		Use:   "backup [STORE...]",
		Short: "Back up stores of the plan now",
		Long: `backup runs one backup of each named store (every store of the plan when
none is named), by the store's first method or --method. Each backup holds
the store's lease in the repository (a second writer gets exit 11), streams
through zstd and age into the repository, and becomes visible only when its
manifest is written: an interrupted backup leaves nothing in 'backups list'.
If several stores are named, all are attempted; the exit status is that of
the first failure.`,
		Example: "  linkdr backup\n  linkdr backup users-db\n  linkdr backup users-db --method logical -o json",
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			stores := args
			if len(stores) == 0 {
				stores = r.Plan.StoreNames()
			}
			for _, s := range stores {
				if _, err := r.StoreConfig(s); err != nil {
					return err
				}
			}
			var done []*repo.Manifest
			var first error
			for _, s := range stores {
				m, err := r.Backup(cmd.Context(), s, method)
				if err != nil {
					if first == nil {
						first = err
					}
					if len(stores) > 1 {
						fmt.Fprintf(g.stderr, "linkdr: %v\n", err)
					}
					if cmd.Context().Err() != nil {
						break
					}
					continue
				}
				done = append(done, m)
			}
			if g.json() {
				if err := printJSON(g.stdout, done); err != nil {
					return err
				}
			} else if len(done) > 0 {
				t := newTable(g.stdout, "STORE", "METHOD", "BACKUP", "CONSISTENT AT", "SIZE", "STORED", "DURATION")
				for _, m := range done {
					t.row(m.Store, m.Method, m.ID, stamp(m.ConsistentAt), sizeOf(m.PlainSize()), sizeOf(m.StoredSize()), m.Finished.Sub(m.Started).Round(time.Millisecond))
				}
				t.flush()
			}
			if first != nil && len(stores) > 1 {
				return fmt.Errorf("%d of %d backups failed; first: %w", len(stores)-len(done), len(stores), first)
			}
			return first
		},
	}
	cmd.Flags().StringVar(&method, "method", "", "backup method (default: the store's first in the plan)")
	return cmd
}

func newBackupsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backups",
		Short: "List and inspect backups in a repository",
	}
	var storeName, repoName string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List complete backups, oldest first",
		Example: "  linkdr backups list\n  linkdr backups list --store users-db -o json\n  linkdr backups list --repo dr",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			if storeName != "" {
				if _, err := r.StoreConfig(storeName); err != nil {
					return err
				}
			}
			rp, err := r.OpenRepo(cmd.Context(), repoName)
			if err != nil {
				return err
			}
			defer rp.Close()
			all, err := rp.Backups(cmd.Context(), storeName)
			if err != nil {
				return err
			}
			if g.json() {
				if all == nil {
					all = []*repo.Manifest{}
				}
				return printJSON(g.stdout, all)
			}
			t := newTable(g.stdout, "BACKUP", "STORE", "KIND", "METHOD", "CONSISTENT AT", "SIZE", "STORED", "DURATION")
			for _, m := range all {
				t.row(m.ID, m.Store, m.Kind, m.Method, stamp(m.ConsistentAt), sizeOf(m.PlainSize()), sizeOf(m.StoredSize()), m.Finished.Sub(m.Started).Round(time.Millisecond))
			}
			t.flush()
			return nil
		},
	}
	list.Flags().StringVar(&storeName, "store", "", "only this store")
	list.Flags().StringVar(&repoName, "repo", "", "repository of the plan (default primary)")

	var showRepo string
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one backup's manifest",
		Example: "  linkdr backups show 20261126T061500Z-3fa2\n  linkdr backups show 20261126T06 -o json",
		Args:    exactArgs(1, "a backup id (or unique prefix, or STORE/ID)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			rp, err := r.OpenRepo(cmd.Context(), showRepo)
			if err != nil {
				return err
			}
			defer rp.Close()
			m, err := rp.Backup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return printJSON(g.stdout, m)
			}
			return printManifest(g, m)
		},
	}
	show.Flags().StringVar(&showRepo, "repo", "", "repository of the plan (default primary)")
	cmd.AddCommand(list, show)
	return cmd
}

func printManifest(g *globals, m *repo.Manifest) error {
	w := g.stdout
	fmt.Fprintf(w, "backup:        %s\nstore:         %s (%s, method %s)\n", m.ID, m.Store, m.Kind, m.Method)
	fmt.Fprintf(w, "consistent at: %s\nstarted:       %s\nfinished:      %s (%s)\n", stamp(m.ConsistentAt), stamp(m.Started), stamp(m.Finished), m.Finished.Sub(m.Started).Round(time.Millisecond))
	fmt.Fprintf(w, "size:          %s plaintext, %s stored\n", sizeOf(m.PlainSize()), sizeOf(m.StoredSize()))
	fmt.Fprintf(w, "encryption:    %s to %d recipient(s), %s\n", m.Encryption.Scheme, len(m.Encryption.Recipients), m.Encryption.Compression)
	if m.RetainUntil != nil {
		lock := ""
		if m.ObjectLock != "" {
			lock = " (S3 Object Lock, " + m.ObjectLock + ")"
		}
		fmt.Fprintf(w, "retain until:  %s%s\n", stamp(*m.RetainUntil), lock)
	}
	fmt.Fprintf(w, "written by:    %s %s\n\nartifacts:\n", m.Tool.Name, m.Tool.Version)
	t := newTable(w, "  NAME", "SIZE", "STORED", "SHA256 (PLAINTEXT)")
	for _, a := range m.Artifacts {
		t.row("  "+a.Name, sizeOf(a.PlainSize), sizeOf(a.StoredSize), a.PlainSHA256)
	}
	for _, a := range m.Pool {
		t.row("  "+a.Name+" (pool)", sizeOf(a.PlainSize), sizeOf(a.StoredSize), a.PlainSHA256)
	}
	for _, a := range m.Plain {
		t.row("  "+a.Name+" (plain)", sizeOf(a.PlainSize), sizeOf(a.StoredSize), a.PlainSHA256)
	}
	t.flush()
	if len(m.Source) > 0 {
		fmt.Fprintf(w, "\nsource:\n%s\n", indentJSON(m.Source))
	}
	if len(m.Stats) > 0 {
		fmt.Fprintf(w, "\nstats:\n%s\n", indentJSON(m.Stats))
	}
	return nil
}

func indentJSON(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return string(raw)
	}
	return "  " + string(b)
}
