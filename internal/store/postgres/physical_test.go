package postgres_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/ops"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres"
	"github.com/linkapp/linkdr/internal/testenv"
)

// TestPhysicalVerify: verify proves every file of a physical backup
// against the server's backup_manifest, and that the WAL the backup needs
// is archived. (The full archive-and-restore cycle is in internal/cli.)
func TestPhysicalVerify(t *testing.T) {
	ctx := context.Background()
	pg := testenv.NewPostgres(t, testenv.PostgresOptions{})
	exec1(t, pg.URL, `CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g`)
	r := ops.TestRunner(t, "", "  db:\n    kind: postgres\n    url: "+pg.URL+"\n    backups: [{method: physical}]\n")
	m, err := r.Backup(ctx, "db", "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := postgres.PhysicalSourceOf(m)
	if err != nil {
		t.Fatal(err)
	}
	var st postgres.PhysicalStats
	mustJSON(t, m.Stats, &st)
	if src.StartLSN == 0 || src.StopLSN < src.StartLSN || src.StartWAL == "" || src.WALSegmentSize != 16<<20 || st.Files < 500 || st.Checksums != "CRC32C" {
		t.Fatalf("manifest: %s %s", m.Source, m.Stats)
	}
	if len(m.Artifacts) != 2 || m.Artifacts[0].Name != "base.tar" || m.Artifacts[1].Name != postgres.ManifestArtifact {
		t.Fatalf("artifacts: %+v", m.Artifacts)
	}
	rp, err := r.OpenRepo(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()

	t.Run("ErrIncomplete", func(t *testing.T) {
		// The files are intact, but nothing archives WAL on this server.
		_, err := r.Verify(ctx, rp, m)
		if !errors.Is(err, store.ErrIncomplete) || !errors.Is(err, envelope.ErrIntegrity) || !strings.Contains(err.Error(), src.StartWAL) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ErrIntegrity", func(t *testing.T) {
		// A copy of the backup whose PG_VERSION says 14: sealed correctly,
		// so only the per-file CRC-32C can tell.
		ids, _ := r.Identities()
		read := func(name string) []byte {
			rc, err := rp.OpenArtifact(ctx, m, name, ids)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		base := read("base.tar")
		tr := tar.NewReader(bytes.NewReader(base))
		var off int64 = -1
		for {
			h, err := tr.Next()
			if err != nil {
				t.Fatal("no PG_VERSION in base.tar")
			}
			if h.Name == "PG_VERSION" {
				// The data follows the header block that ends right before it.
				b, _ := io.ReadAll(tr)
				off = int64(bytes.Index(base, append([]byte("15\n"), make([]byte, 512-3)...)))
				if string(b) != "15\n" || off < 0 {
					t.Fatalf("PG_VERSION %q at %d", b, off)
				}
				break
			}
		}
		base[off+1] = '4'
		w, err := rp.NewBackup(repo.WriterOptions{Store: "db", Kind: "postgres", Method: "physical", Recipients: r.Plan.Encryption.Recipients})
		if err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string][]byte{"base.tar": base, postgres.ManifestArtifact: read(postgres.ManifestArtifact)} {
			a, err := w.CreateArtifact(ctx, name, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			a.Write(body)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		}
		bad, err := w.Commit(ctx, repo.CommitInfo{ConsistentAt: m.ConsistentAt, Source: m.Source, Stats: m.Stats})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Verify(ctx, rp, bad)
		if !errors.Is(err, envelope.ErrIntegrity) || !strings.Contains(err.Error(), "PG_VERSION: CRC-32C") {
			t.Fatalf("got %v", err)
		}
	})
}
