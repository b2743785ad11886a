package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/store"
)

// parallelRestore restores one database with several pg_restore
// processes while the dump is still arriving: the artifact is spooled to a
// file that every process follows from its start.
//
//  1. pre-data (schema) as soon as the table of contents has arrived;
//  2. table data split over `jobs` processes, balanced by the bytes each
//     table had at backup time, each skipping the others' blocks;
//  3. post-data (indexes, constraints) with `pg_restore --jobs` on the
//     complete file.
//
// Decrypting and decompressing thus overlap with loading instead of
// preceding it, which is what keeps a restore from the repository as fast
// as pg_restore -j from a local file.
func (p *Postgres) parallelRestore(ctx context.Context, req store.RestoreRequest, pgRestore string, pr plannedRestore, art io.Reader) error {
	jobs := req.Jobs
	sp, f, err := newSpool(req.TempDir)
	if err != nil {
		return fmt.Errorf("spool for parallel restore: %w (hint: --jobs 1 streams without a temporary file)", err)
	}
	defer sp.remove()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	filled := make(chan error, 1)
	go func() { filled <- sp.fill(f, art) }()
	// Whatever else fails, damage in the artifact is the story to tell.
	fail := func(err error) error {
		cancel()
		if ferr := <-filled; ferr != nil {
			return ferr
		}
		return err
	}

	base := []string{"--no-password", "--exit-on-error", "--dbname=" + pr.target.String()}
	toc, err := p.fromSpool(ctx, pgRestore, pr, sp, true, "--list")
	if err != nil {
		return fail(err)
	}
	if _, err := p.fromSpool(ctx, pgRestore, pr, sp, false, append(base, "--section=pre-data")...); err != nil {
		return fail(err)
	}
	lists, err := dataLists(toc, pr.stats, jobs, req.TempDir)
	if err != nil {
		return fail(err)
	}
	defer func() {
		for _, l := range lists {
			os.Remove(l)
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for _, list := range lists {
		g.Go(func() error {
			_, err := p.fromSpool(gctx, pgRestore, pr, sp, false, append(base, "--section=data", "--use-list="+list)...)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	if err := <-filled; err != nil {
		return err
	}
	cmd, tail := command(ctx, pgRestore, pr.target.toolEnv(), append(base, "--section=post-data", "--jobs="+strconv.Itoa(jobs), sp.path)...)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return toolError("pg_restore", err, tail)
	}
	return nil
}

// fromSpool runs pg_restore reading the spool from its start. With
// capture it returns the tool's stdout.
func (p *Postgres) fromSpool(ctx context.Context, pgRestore string, pr plannedRestore, sp *spool, capture bool, args ...string) ([]byte, error) {
	in, err := sp.follow()
	if err != nil {
		return nil, err
	}
	defer in.Close()
	cmd, tail := command(ctx, pgRestore, pr.target.toolEnv(), args...)
	var out bytes.Buffer
	if capture {
		cmd.Stdout = &out
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pg_restore: %w", err)
	}
	// pg_restore may stop reading early (--list, pre-data): a broken pipe
	// then is expected, and Wait tells whether it succeeded.
	io.Copy(stdin, in)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, toolError("pg_restore "+strings.Join(args[len(args)-1:], " "), err, tail)
	}
	return out.Bytes(), nil
}

// dataLists writes one pg_restore --use-list file per job. Every TOC line
// goes to the first list, except TABLE DATA entries, which are spread so
// each job gets about the same number of bytes (from the manifest's
// per-table figures; equal weights when there are none). --section=data
// then keeps only the data entries of each list.
func dataLists(toc []byte, st *DatabaseStats, jobs int, dir string) ([]string, error) {
	weight := map[int]int64{}
	if st != nil {
		for _, t := range st.Tables {
			weight[t.DumpID] = t.Bytes + 1
		}
	}
	type entry struct {
		line string
		id   int
	}
	var common []string
	var data []entry
	sc := bufio.NewScanner(bytes.NewReader(toc))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ";") || strings.TrimSpace(line) == "" {
			continue
		}
		id, err := strconv.Atoi(line[:max(strings.IndexByte(line, ';'), 0)])
		if err == nil && strings.Contains(line, " TABLE DATA ") {
			data = append(data, entry{line, id})
			continue
		}
		common = append(common, line)
	}
	// Greedy: heaviest table to the lightest job.
	order := append([]entry(nil), data...)
	sort.SliceStable(order, func(i, j int) bool { return weight[order[i].id] > weight[order[j].id] })
	load := make([]int64, jobs)
	assign := map[int]int{}
	for _, e := range order {
		k := 0
		for j := range load {
			if load[j] < load[k] {
				k = j
			}
		}
		assign[e.id] = k
		load[k] += max(weight[e.id], 1)
	}
	lists := make([][]string, jobs)
	lists[0] = append(lists[0], common...)
	for _, e := range data { // archive order: a stream cannot be read backwards
		lists[assign[e.id]] = append(lists[assign[e.id]], e.line)
	}
	var paths []string
	for i, l := range lists {
		path := filepath.Join(dir, fmt.Sprintf("linkdr-restore-%d-%d.list", os.Getpid(), i))
		if err := os.WriteFile(path, []byte(strings.Join(l, "\n")+"\n"), 0o600); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}
