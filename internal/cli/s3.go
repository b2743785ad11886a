package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/store/s3bucket"
)

func newS3Cmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "S3 bucket stores: replication checks",
	}
	var maxLag time.Duration
	var show int
	verify := &cobra.Command{
		Use:   "verify-replication STORE",
		Short: "Compare an S3 store's bucket with its replica",
		Long: `verify-replication lists the store's bucket (and prefix) and the replica
bucket the plan names (stores.STORE.replica.url), and reports objects
missing from the replica, objects that differ (size or ETag), and extra
objects only the replica has (deletions that were not replicated). The lag
estimate is the age of the oldest source change the replica does not have.

--max-lag tolerates changes younger than it (replication in flight). The
exit status is 0 when the replica is in sync (within --max-lag), 1 when not:
it works as a cron or monitoring check. Credentials for both buckets come
from the standard AWS sources.`,
		Example: "  linkdr s3 verify-replication media\n  linkdr s3 verify-replication media --max-lag 15m -o json",
		Args:    exactArgs(1, "an s3 store name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runner()
			if err != nil {
				return err
			}
			cfg, err := r.StoreConfig(args[0])
			if err != nil {
				return err
			}
			rep, err := s3bucket.VerifyReplication(cmd.Context(), cfg, maxLag, time.Now())
			if err != nil {
				return err
			}
			if g.json() {
				if err := printJSON(g.stdout, rep); err != nil {
					return err
				}
			} else {
				printReplication(g, rep, show)
			}
			if !rep.InSync {
				return fmt.Errorf("replica of %s is out of sync: %d missing, %d different, %d extra (lag %s)",
					rep.Store, len(rep.Missing), len(rep.Different), len(rep.Extra), age(rep.Lag))
			}
			return nil
		},
	}
	verify.Flags().DurationVar(&maxLag, "max-lag", 0, "tolerate source changes younger than this (0: none)")
	verify.Flags().IntVar(&show, "show", 20, "how many differing keys of each kind to list")
	cmd.AddCommand(verify)
	return cmd
}

func printReplication(g *globals, r *s3bucket.ReplicationReport, show int) {
	w := g.stdout
	fmt.Fprintf(w, "source:   %s (%d objects)\nreplica:  %s (%d objects)\n", r.Source, r.SourceObjects, r.Replica, r.ReplicaObjects)
	state := "IN SYNC"
	if !r.InSync {
		state = "OUT OF SYNC"
	}
	fmt.Fprintf(w, "state:    %s: %d missing, %d different, %d extra", state, len(r.Missing), len(r.Different), len(r.Extra))
	if r.Tolerated > 0 {
		fmt.Fprintf(w, " (%d within --max-lag)", r.Tolerated)
	}
	fmt.Fprintln(w)
	if r.OldestUnreplicated != nil {
		fmt.Fprintf(w, "lag:      %s (oldest change not replicated: %s)\n", age(r.Lag), stamp(*r.OldestUnreplicated))
	} else {
		fmt.Fprintln(w, "lag:      0 (the replica has every source object)")
	}
	list := func(what string, ds []s3bucket.Difference) {
		if len(ds) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", what)
		for i, d := range ds {
			if i == show {
				fmt.Fprintf(w, "  … and %d more (-o json lists all)\n", len(ds)-show)
				break
			}
			var parts []string
			if d.Source != nil {
				parts = append(parts, fmt.Sprintf("source %s %s %s", sizeOf(d.Source.Size), d.Source.ETag, stamp(d.Source.LastModified)))
			}
			if d.Replica != nil {
				parts = append(parts, fmt.Sprintf("replica %s %s %s", sizeOf(d.Replica.Size), d.Replica.ETag, stamp(d.Replica.LastModified)))
			}
			fmt.Fprintf(w, "  %s  (%s)\n", d.Key, strings.Join(parts, "; "))
		}
	}
	list("missing from the replica", r.Missing)
	list("different in the replica", r.Different)
	list("only in the replica", r.Extra)
}
