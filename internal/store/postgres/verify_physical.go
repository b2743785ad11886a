package postgres

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"strings"

	"github.com/linkapp/linkdr/internal/envelope"
	"github.com/linkapp/linkdr/internal/repo"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
	"github.com/linkapp/linkdr/internal/store/postgres/walarchive"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// PhysicalSourceOf decodes the source facts of a physical backup.
func PhysicalSourceOf(m *repo.Manifest) (PhysicalSource, error) { return decodePhysical(m) }

func decodePhysical(m *repo.Manifest) (PhysicalSource, error) {
	var src PhysicalSource
	if m.Kind != "postgres" || m.Method != "physical" {
		return src, fmt.Errorf("backup %s is %s %s, not a postgres physical backup", m.ID, m.Kind, m.Method)
	}
	if err := json.Unmarshal(m.Source, &src); err != nil {
		return src, fmt.Errorf("backup %s: manifest source: %w", m.ID, err)
	}
	if !wal.ValidSegmentSize(src.WALSegmentSize) {
		return src, fmt.Errorf("backup %s: manifest has no valid wal_segment_size", m.ID)
	}
	return src, nil
}

// VerifyBackup checks a physical backup as a restore would need it: every
// file of every tablespace archive against the size and CRC-32C that the
// server wrote into backup_manifest, no file missing, and every WAL
// segment from the backup's start to its consistency point archived and
// intact. Logical backups are left to VerifyArtifact.
func (p *Postgres) VerifyBackup(ctx context.Context, req store.VerifyRequest) (bool, error) {
	if req.Manifest.Method != "physical" {
		return false, nil
	}
	m := req.Manifest
	src, err := decodePhysical(m)
	if err != nil {
		return true, err
	}
	man, err := readBackupManifest(ctx, req.Source)
	if err != nil {
		return true, err
	}
	want := map[string]manifestFile{}
	for _, f := range man.Files {
		path := f.Path
		if f.EncodedPath != "" {
			b, err := hex.DecodeString(f.EncodedPath)
			if err != nil {
				return true, fmt.Errorf("backup_manifest: bad Encoded-Path %q", f.EncodedPath)
			}
			path = string(b)
		}
		want[path] = manifestFile{size: f.Size, algo: f.Algorithm, sum: strings.ToLower(f.Checksum)}
	}
	seen := map[string]bool{}
	for _, ts := range src.Tablespaces {
		prefix := ""
		if ts.OID != 0 {
			prefix = fmt.Sprintf("pg_tblspc/%d/", ts.OID)
		}
		if err := verifyTar(ctx, req.Source, ts.Artifact, prefix, want, seen); err != nil {
			return true, err
		}
	}
	var missing []string
	for path := range want {
		if !seen[path] {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return true, fmt.Errorf("%w: %d files of backup_manifest are not in the archives, e.g. %s", envelope.ErrIntegrity, len(missing), strings.Join(missing[:min(5, len(missing))], ", "))
	}
	if err := verifyConsistencyWAL(ctx, req, src); err != nil {
		return true, err
	}
	req.Log.Info("physical backup verified", "files", len(want), "wal", src.StartWAL+".."+src.StopWAL)
	return true, nil
}

type manifestFile struct {
	size int64
	algo string
	sum  string
}

func readBackupManifest(ctx context.Context, s store.Source) (*pgManifest, error) {
	rc, err := s.OpenArtifact(ctx, ManifestArtifact)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return parseManifest(b)
}

// verifyTar reads one tablespace archive to its end and checks each file.
func verifyTar(ctx context.Context, s store.Source, artifact, prefix string, want map[string]manifestFile, seen map[string]bool) error {
	rc, err := s.OpenArtifact(ctx, artifact)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	crc := crc32.New(castagnoli)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", artifact, tarError(err))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		path := prefix + h.Name
		exp, ok := want[path]
		if !ok {
			continue // pg_wal and the like are not in the manifest
		}
		crc.Reset()
		n, err := io.Copy(crc, tr)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", artifact, h.Name, tarError(err))
		}
		seen[path] = true
		if n != exp.size {
			return fmt.Errorf("%w: %s: %d bytes, backup_manifest says %d", envelope.ErrIntegrity, path, n, exp.size)
		}
		if exp.algo == "CRC32C" {
			// PostgreSQL prints the CRC's bytes in memory order.
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], crc.Sum32())
			if got := hex.EncodeToString(b[:]); got != exp.sum {
				return fmt.Errorf("%w: %s: CRC-32C %s, backup_manifest says %s", envelope.ErrIntegrity, path, got, exp.sum)
			}
		}
	}
	// Read what follows the tar end marker so the artifact's sums are checked.
	_, err = io.Copy(io.Discard, rc)
	return err
}

// tarError keeps an integrity error from the envelope as it is; anything
// else the tar reader complains about is damage too.
func tarError(err error) error {
	if errors.Is(err, envelope.ErrIntegrity) || errors.Is(err, envelope.ErrWrongKey) {
		return err
	}
	return fmt.Errorf("%w: %v", envelope.ErrIntegrity, err)
}

// verifyConsistencyWAL checks that the segments from the backup's start to
// its stop point are archived and read back intact.
func verifyConsistencyWAL(ctx context.Context, req store.VerifyRequest, src PhysicalSource) error {
	if req.Repo == nil {
		return errors.New("verify physical backup: no repository to read the WAL archive from")
	}
	arch := walarchive.New(req.Repo, req.Manifest.Store, nil, 0)
	entries, err := arch.List(ctx)
	if err != nil {
		return err
	}
	chain, err := arch.Walk(ctx, entries, walarchive.WalkOptions{
		Timeline: src.Timeline, Start: src.StartLSN, SegmentSize: src.WALSegmentSize,
		Target: max(src.StopLSN, 1) - 1, TargetTimeline: src.StopTimeline,
	})
	if err != nil {
		return err
	}
	if !chain.Complete() {
		return fmt.Errorf("%w: %w: backup %s needs WAL %s to %s to be consistent; missing %s (hint: check archive_command / linkdr wal-receive; `linkdr wal verify %s` lists every gap)",
			envelope.ErrIntegrity, store.ErrIncomplete, req.Manifest.ID, src.StartWAL, src.StopWAL, strings.Join(chain.Missing, ", "), req.Manifest.Store)
	}
	first, _ := wal.ParseName(src.StartWAL)
	for sn := wal.SegNoOf(src.StartLSN, src.WALSegmentSize); sn <= wal.SegNoOf(max(src.StopLSN, 1)-1, src.WALSegmentSize); sn++ {
		n := walarchive.ResolveSegment(entries, sn, src.WALSegmentSize, first.Timeline, src.StopTimeline)
		rc, _, err := arch.Open(ctx, n, req.Identities)
		if err != nil {
			return fmt.Errorf("WAL %s: %w", n, err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("WAL %s: %w", n, err)
		}
	}
	return nil
}
