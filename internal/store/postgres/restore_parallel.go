package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/pgarchive"
)

// parallelRestore restores one database over `jobs` connections while
// the dump is still arriving, without a temporary copy of its data:
//
//  1. the archive's header and table of contents go to a small file, from
//     which pg_restore creates the schema (pre-data);
//  2. linkdr loads each table's COPY data as it streams past, cut into
//     chunks of whole rows that every connection takes from in turn, so
//     one large table keeps all jobs busy (pg_restore -j gives a table to
//     one job: the largest table bounds the data phase);
//  3. as soon as a large table's data is in, pg_restore builds that
//     table's own indexes and constraints (earlyPostData) while the next
//     tables load: the index builds of the first tables no longer wait
//     for the last table's data;
//  4. pg_restore restores what else the data section holds (sequence
//     values) and then, with --jobs, the rest of the post-data section
//     (foreign keys, comments, everything not built early) from the same
//     small file.
//
// Archives this cannot read block by block (large objects, compressed
// dumps) are spooled to a file and restored by `pg_restore --jobs`.
func (p *Postgres) parallelRestore(ctx context.Context, req store.RestoreRequest, pgRestore string, pr plannedRestore, art io.Reader) error {
	ar, err := pgarchive.NewReader(art)
	if err != nil && !errors.Is(err, pgarchive.ErrUnsupported) {
		return err
	}
	whole := io.MultiReader(bytes.NewReader(ar.Head), ar.Rest())
	if err != nil || ar.Compressed || hasLargeObjects(ar.TOC) {
		return p.spooledRestore(ctx, req, pgRestore, pr, whole, nil)
	}
	jobs := req.Jobs
	toc, err := os.CreateTemp(req.TempDir, "linkdr-restore-*.toc")
	if err != nil {
		return fmt.Errorf("table of contents for parallel restore: %w (hint: --jobs 1 streams without a temporary file)", err)
	}
	defer os.Remove(toc.Name())
	if _, err := toc.Write(ar.Head); err != nil {
		toc.Close()
		return err
	}
	if err := toc.Close(); err != nil {
		return err
	}
	base := []string{"--no-password", "--exit-on-error", "--dbname=" + pr.target.String()}
	runTool := func(ctx context.Context, env []string, args ...string) error {
		return runPgRestore(ctx, "pg_restore "+args[0], pgRestore, env, append(append(base, args...), toc.Name())...)
	}
	// runList restores the listed entries of a section.
	runList := func(ctx context.Context, env []string, section string, entries []pgarchive.Entry, extra ...string) error {
		f, err := os.CreateTemp(req.TempDir, "linkdr-restore-*.list")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		_, err = f.WriteString(useList(entries))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return runTool(ctx, env, append([]string{"--section=" + section, "--use-list=" + f.Name()}, extra...)...)
	}

	start := time.Now()
	env := pr.target.toolEnv()
	if err := runTool(ctx, env, "--section=pre-data"); err != nil {
		return err
	}
	conns, err := loadConns(ctx, pr.target, ar.TOC, jobs)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	byID := map[int]pgarchive.Entry{}
	for _, e := range ar.TOC {
		byID[e.ID] = e
	}
	preData := time.Since(start)

	// Early index builds run beside the loading; the first of either to
	// fail stops the other. Two tables build at once at most, each with
	// --jobs: with the `jobs` connections loading, the server runs up to
	// three times --jobs processes (and two times --jobs index builds,
	// each with maintenance_work_mem). The second table matters: a large
	// table's builds often outlast the loading of the next one, whose
	// builds would otherwise wait and end the restore alone.
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	early, ectx := errgroup.WithContext(lctx)
	slots := make(chan struct{}, 2)
	local := tablePostData(ar.TOC)
	built := map[int]bool{}
	stop := func(err error) error {
		stopLoad()
		if eerr := early.Wait(); eerr != nil && !errors.Is(eerr, context.Canceled) {
			return eerr // the loading stopped because an index build failed
		}
		return err
	}
	for {
		id, err := ar.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return stop(err)
		}
		e, ok := byID[id]
		if !ok || e.Desc != "TABLE DATA" || e.CopyStmt == "" {
			return stop(fmt.Errorf("%w: data block for TOC entry %d (%s %s), which is not table data", pgarchive.ErrUnsupported, id, e.Desc, e.Tag))
		}
		t0 := time.Now()
		n, err := loadTable(ectx, conns, e.CopyStmt, ar)
		if err != nil {
			return stop(fmt.Errorf("load %s.%s: %w", e.Namespace, e.Tag, err))
		}
		req.Log.Debug("loaded table", "table", e.Namespace+"."+e.Tag, "bytes", n, "duration", time.Since(t0).Round(time.Millisecond))
		if entries := local[id]; n >= earlyPostData && len(entries) > 0 {
			for _, le := range entries {
				built[le.ID] = true
			}
			table := e.Namespace + "." + e.Tag
			early.Go(func() error {
				select {
				case slots <- struct{}{}:
				case <-ectx.Done():
					return ectx.Err()
				}
				defer func() { <-slots }()
				t0 := time.Now()
				if err := runList(ectx, indexEnv(env), "post-data", entries, "--jobs="+strconv.Itoa(jobs)); err != nil {
					return fmt.Errorf("indexes of %s: %w", table, err)
				}
				req.Log.Debug("built indexes early", "table", table, "entries", len(entries), "duration", time.Since(t0).Round(time.Millisecond))
				return nil
			})
		}
	}
	data := time.Since(start) - preData

	if list := otherData(ar.TOC); len(list) > 0 {
		if err := runList(ectx, env, "data", list); err != nil {
			return stop(err)
		}
	}
	if err := early.Wait(); err != nil {
		return err
	}
	switch rest := postDataExcept(ar.TOC, built); {
	case len(built) == 0:
		err = runTool(ctx, indexEnv(env), "--section=post-data", "--jobs="+strconv.Itoa(jobs))
	case len(rest) > 0:
		err = runList(ctx, indexEnv(env), "post-data", rest, "--jobs="+strconv.Itoa(jobs))
	}
	if err != nil {
		return err
	}
	req.Log.Debug("parallel restore phases", "database", pr.db.Name, "schema", preData.Round(time.Millisecond),
		"data", data.Round(time.Millisecond), "post_data", (time.Since(start) - preData - data).Round(time.Millisecond),
		"built_early", len(built))
	return nil
}

// earlyPostData is the least table data, in bytes, whose indexes are
// built as soon as it is loaded rather than with the rest of the
// post-data section. A pg_restore run of its own costs tens of
// milliseconds; a 32 MiB table's index builds take a good part of a
// second, which then overlap the loading of the tables after it. On the
// bench database (messages 540 MB, then users 190 MB) the primary key of
// messages is built while users loads, and no core waits at the end for
// the last index build of messages alone.
var earlyPostData int64 = 32 << 20 // a variable for the tests

// indexEnv keeps each index build of the post-data section to one
// process: --jobs N already runs N builds at once, and the parallel
// workers each build would add by default (max_parallel_maintenance_workers,
// 2) oversubscribe a server whose cores --jobs was sized to. Measured on two
// cores with --jobs 2: post-data 6.2–7.4 s instead of 7.8–9.0 s. A
// setting of it in PGOPTIONS wins.
func indexEnv(env []string) []string {
	const set = "-c max_parallel_maintenance_workers=0"
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PGOPTIONS="); ok {
			if strings.Contains(v, "max_parallel_maintenance_workers") {
				return env
			}
			out := append([]string(nil), env...)
			out[i] = "PGOPTIONS=" + strings.TrimSpace(v+" "+set)
			return out
		}
	}
	return append(env[:len(env):len(env)], "PGOPTIONS="+set)
}

// spooledRestore writes the whole archive to a temporary file and runs
// one `pg_restore --jobs` over it.
func (p *Postgres) spooledRestore(ctx context.Context, req store.RestoreRequest, pgRestore string, pr plannedRestore, r io.Reader, extra []string) error {
	f, err := os.CreateTemp(req.TempDir, "linkdr-restore-*.dump")
	if err != nil {
		return fmt.Errorf("spool for parallel restore: %w (hint: --jobs 1 streams without a temporary file)", err)
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	args := append([]string{"--no-password", "--exit-on-error", "--dbname=" + pr.target.String()}, extra...)
	args = append(args, "--jobs="+strconv.Itoa(max(req.Jobs, 1)), f.Name())
	return runPgRestore(ctx, "pg_restore", pgRestore, indexEnv(pr.target.toolEnv()), args...)
}

// runPgRestore runs pg_restore over a file to its end; label names the
// run in an error.
func runPgRestore(ctx context.Context, label, pgRestore string, env []string, args ...string) error {
	cmd, tail := command(ctx, pgRestore, env, args...)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return toolError(label, err, tail)
	}
	return nil
}

// hasLargeObjects: large objects come in blocks of their own, which only
// pg_restore loads.
func hasLargeObjects(toc []pgarchive.Entry) bool {
	for _, e := range toc {
		if strings.HasPrefix(e.Desc, "BLOB") {
			return true
		}
	}
	return false
}

// sections gives every entry of the table of contents its section as
// pg_restore --section counts it: an entry without one (a comment, a
// grant) belongs where it stands.
func sections(toc []pgarchive.Entry) []int {
	out := make([]int, len(toc))
	section := pgarchive.SectionPreData
	for i, e := range toc {
		if e.Section >= pgarchive.SectionPreData {
			section = e.Section
		}
		out[i] = section
	}
	return out
}

// otherData is the data section's entries that are not table data
// (sequence values, mostly): they are SQL in the table of contents,
// restored by pg_restore.
func otherData(toc []pgarchive.Entry) []pgarchive.Entry {
	var out []pgarchive.Entry
	for i, sec := range sections(toc) {
		if sec == pgarchive.SectionData && toc[i].Desc != "TABLE DATA" {
			out = append(out, toc[i])
		}
	}
	return out
}

// postDataExcept is the post-data section less the entries in skip.
func postDataExcept(toc []pgarchive.Entry, skip map[int]bool) []pgarchive.Entry {
	var out []pgarchive.Entry
	for i, sec := range sections(toc) {
		if sec == pgarchive.SectionPostData && !skip[toc[i].ID] {
			out = append(out, toc[i])
		}
	}
	return out
}

// useList writes entries in pg_restore --use-list form: pg_restore reads
// the number at the start of each line, and the rest is for people. A
// name may hold a line break (a quoted identifier can), which would start
// a line of its own, so names are kept to one line.
func useList(entries []pgarchive.Entry) string {
	oneLine := strings.NewReplacer("\n", " ", "\r", " ")
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%d; %s %s\n", e.ID, e.Desc, oneLine.Replace(e.Tag))
	}
	return b.String()
}

// tableLocal are the kinds of post-data entry that can belong to one
// table alone. Anything else (foreign keys, which need another table's
// key; index attachments; comments and grants on indexes; publications)
// waits for the whole post-data section.
var tableLocal = map[string]bool{"INDEX": true, "CONSTRAINT": true, "CHECK CONSTRAINT": true, "TRIGGER": true}

// tablePostData maps each TABLE DATA entry to the post-data entries that
// need nothing but its table, loaded, and the schema: a tableLocal kind
// whose dependencies are that one table plus pre-data objects that are
// not tables. These can be built as soon as the table's data is in — what
// pg_restore --jobs itself would schedule then, knowing only the same
// dependencies.
func tablePostData(toc []pgarchive.Entry) map[int][]pgarchive.Entry {
	secs := sections(toc)
	byID := map[int]int{} // entry ID → index in toc
	for i, e := range toc {
		byID[e.ID] = i
	}
	dataOf := map[int]int{} // TABLE entry ID → its TABLE DATA entry ID
	for _, e := range toc {
		if e.Desc == "TABLE DATA" {
			for _, d := range e.Deps {
				if i, ok := byID[d]; ok && toc[i].Desc == "TABLE" {
					dataOf[d] = e.ID
				}
			}
		}
	}
	out := map[int][]pgarchive.Entry{}
	for i, e := range toc {
		if secs[i] != pgarchive.SectionPostData || !tableLocal[e.Desc] {
			continue
		}
		table, ok := 0, true
		for _, d := range e.Deps {
			j, found := byID[d]
			switch {
			case !found || secs[j] != pgarchive.SectionPreData:
				ok = false
			case toc[j].Desc == "TABLE" && (table == 0 || table == d):
				table = d // an expression index lists its table twice
			case toc[j].Desc == "TABLE":
				ok = false // two tables
			}
		}
		if data, has := dataOf[table]; ok && has {
			out[data] = append(out[data], e)
		}
	}
	return out
}

// loadConns opens the connections that load table data, set up as
// pg_restore sets up its own: the archive's encoding, string and
// search_path settings, and no timeouts.
func loadConns(ctx context.Context, target *endpoint, toc []pgarchive.Entry, n int) ([]*pgx.Conn, error) {
	setup := []string{"SET statement_timeout = 0", "SET lock_timeout = 0", "SET idle_in_transaction_session_timeout = 0",
		"SET check_function_bodies = false", "SET xmloption = content", "SET client_min_messages = warning", "SET row_security = off"}
	for _, e := range toc {
		switch e.Desc {
		case "ENCODING", "STDSTRINGS", "SEARCHPATH":
			setup = append(setup, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(e.Defn), ";")))
		}
	}
	var conns []*pgx.Conn
	for range n {
		c, err := target.connect(ctx)
		if err == nil {
			err = c.PgConn().Exec(ctx, strings.Join(setup, "; ")).Close()
		}
		if err != nil {
			for _, c := range conns {
				c.Close(context.Background())
			}
			return nil, fmt.Errorf("connect to load data: %w", err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// loadChunk is the size of the pieces of COPY text handed to the
// connections: large enough that a chunk costs one message per 64 KiB,
// small enough that the last one of a table keeps the others idle only
// briefly.
const loadChunk = 256 << 10

// holdBack bytes at the end of what has been read are kept until the
// block ends: they may hold the end-of-data marker, which is not data.
const holdBack = 4 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, loadChunk); return &b }}

// loadTable runs stmt (COPY … FROM stdin) on as many of conns as the
// table's size warrants, all fed from one stream of whole-row chunks, and
// returns the bytes of COPY text it read.
func loadTable(ctx context.Context, conns []*pgx.Conn, stmt string, data io.Reader) (int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(wctx)
	chunks := make(chan *[]byte, len(conns))
	started := 0
	send := func(b *[]byte) bool {
		if started < len(conns) { // one more connection for every chunk, up to all
			c := conns[started]
			started++
			g.Go(func() error {
				_, err := c.PgConn().CopyFrom(gctx, &chunkReader{ctx: gctx, chunks: chunks}, stmt)
				return err
			})
		}
		select {
		case chunks <- b:
			return true
		case <-gctx.Done():
			return false
		}
	}
	bp := chunkPool.Get().(*[]byte)
	buf := (*bp)[:0]
	var rerr error
	var total int64
	for {
		if len(buf) == cap(buf) {
			cut := bytes.LastIndexByte(buf[:len(buf)-holdBack], '\n') + 1
			if cut == 0 { // a row longer than the buffer
				buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
				continue
			}
			next := chunkPool.Get().(*[]byte)
			rest := append((*next)[:0], buf[cut:]...)
			*bp = buf[:cut]
			if !send(bp) {
				break
			}
			bp, buf = next, rest
		}
		n, err := data.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		total += int64(n)
		if err == io.EOF {
			if end := pgarchive.CopyEnd(buf); end > 0 {
				*bp = buf[:end]
				send(bp)
			}
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if rerr != nil {
		cancel() // the COPYs fail instead of committing part of the table
		g.Wait()
		return total, rerr
	}
	close(chunks)
	return total, g.Wait()
}

// chunkReader hands the chunks to one COPY, returning each to the pool
// once read.
type chunkReader struct {
	ctx    context.Context
	chunks <-chan *[]byte
	cur    *[]byte
	off    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.off == len(*r.cur) {
		if r.cur != nil {
			*r.cur = (*r.cur)[:0]
			if cap(*r.cur) == loadChunk {
				chunkPool.Put(r.cur)
			}
			r.cur = nil
		}
		select {
		case b, ok := <-r.chunks:
			if !ok {
				return 0, io.EOF
			}
			r.cur, r.off = b, 0
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, (*r.cur)[r.off:])
	r.off += n
	return n, nil
}
