package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/linkapp/linkdr/internal/repo"
)

func newRepoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Manage repositories",
	}
	var name string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Create the plan's repositories (idempotent)",
		Long: `init writes linkdr-repo.json into each repository of the plan (or only --repo),
creating a local directory if needed. A repository that already exists is
left as it is, so running init again is harmless.`,
		Example: "  linkdr repo init\n  linkdr repo init --repo dr",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.loadPlan()
			if err != nil {
				return err
			}
			names := p.RepositoryNames()
			if name != "" {
				if _, ok := p.Repositories[name]; !ok {
					return usagef(fmt.Sprintf("--repo %q: the plan has no such repository (repositories: %v)", name, names))
				}
				names = []string{name}
			}
			type result struct {
				Repository string `json:"repository"`
				URL        string `json:"url"`
				ID         string `json:"id"`
				Created    bool   `json:"created"`
			}
			var out []result
			for _, n := range names {
				r, created, err := repo.Init(cmd.Context(), p.Repositories[n].URL, p.Encryption.Recipients)
				if err != nil {
					return fmt.Errorf("repository %s: %w", n, err)
				}
				out = append(out, result{Repository: n, URL: redactURL(r.URL()), ID: r.Config().ID, Created: created})
				r.Close()
			}
			if g.json() {
				return printJSON(g.stdout, out)
			}
			for _, r := range out {
				verb := "already initialised"
				if r.Created {
					verb = "created"
				}
				fmt.Fprintf(g.stdout, "repository %s (%s): %s, id %s\n", r.Repository, r.URL, verb, r.ID)
			}
			return nil
		},
	}
	initCmd.Flags().StringVar(&name, "repo", "", "initialise only this repository of the plan")
	cmd.AddCommand(initCmd)
	return cmd
}
