package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/postgres/wal"
)

// Media types of physical backup artifacts.
const (
	MediaTypeTar      = "application/x-tar"
	MediaTypeManifest = "application/x-postgresql-backup-manifest+json"
	// ManifestArtifact is the server's backup_manifest.
	ManifestArtifact = "backup_manifest"
)

// PhysicalSource is the manifest's "source" for physical backups.
type PhysicalSource struct {
	Host             string `json:"host"`
	ServerVersion    string `json:"server_version"`
	ServerVersionNum int    `json:"server_version_num"`
	SystemIdentifier string `json:"system_identifier"`
	// InRecovery: taken from a standby.
	InRecovery bool   `json:"in_recovery"`
	Label      string `json:"label"`
	// Timeline and StartLSN: where replay starts (the backup's checkpoint
	// redo point); StopLSN/StopTimeline: where the data is consistent.
	Timeline     uint32  `json:"timeline"`
	StartLSN     wal.LSN `json:"start_lsn"`
	StopLSN      wal.LSN `json:"stop_lsn"`
	StopTimeline uint32  `json:"stop_timeline"`
	// StartWAL and StopWAL name the first and last WAL segments a restore
	// needs to reach consistency.
	StartWAL       string `json:"start_wal"`
	StopWAL        string `json:"stop_wal"`
	WALSegmentSize int64  `json:"wal_segment_size"`
	BlockSize      int    `json:"block_size"`
	// Tablespaces: "base.tar" is the data directory; others are
	// "<oid>.tar" with the location they had on the server.
	Tablespaces []Tablespace `json:"tablespaces"`
}

// Tablespace is one archive of a physical backup.
type Tablespace struct {
	OID      uint32 `json:"oid,omitempty"`
	Location string `json:"location,omitempty"`
	Artifact string `json:"artifact"`
}

// PhysicalStats is the manifest's "stats" for physical backups.
type PhysicalStats struct {
	// Files and Bytes are counted from the server's backup_manifest.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Checksums names the algorithm of the per-file checksums in
	// backup_manifest, which verify recomputes.
	Checksums string `json:"checksums"`
}

// serverZstdWorkers is how many threads the server may use to compress a
// base backup; pgBackRest's process-max 2 is the peer.
const serverZstdWorkers = 2

// zstdLevel maps the plan's compression_level (1 fastest … 4 smallest)
// onto zstd levels, as the envelope's own encoder does.
func zstdLevel(l int) int {
	switch l {
	case 1:
		return 1
	case 3:
		return 9
	case 4:
		return 19
	}
	return 3
}

// serverFacts is what a regular connection tells before a physical backup.
type serverFacts struct {
	serverInfo
	segSize   int64
	blockSize int
}

func (p *Postgres) physicalFacts(ctx context.Context) (serverFacts, error) {
	var f serverFacts
	c, err := p.ep.connect(ctx)
	if err != nil {
		return f, err
	}
	defer c.Close(context.Background())
	if f.serverInfo, err = queryServerInfo(ctx, c); err != nil {
		return f, err
	}
	if f.major() < 15 {
		return f, fmt.Errorf("physical backups need PostgreSQL 15 or newer (server is %s): use method logical", f.Version)
	}
	err = c.QueryRow(ctx, `SELECT pg_size_bytes(current_setting('wal_segment_size')), current_setting('block_size')::int`).Scan(&f.segSize, &f.blockSize)
	if err != nil {
		return f, fmt.Errorf("query wal_segment_size: %w", err)
	}
	return f, nil
}

// replicationConn opens a physical replication connection.
func (e *endpoint) replicationConn(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(e.connString())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e, scrub(err, e.password))
	}
	cfg.RuntimeParams["replication"] = "true"
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("replication connection to %s: %w (hint: the role needs REPLICATION and pg_hba.conf a 'replication' line)", e, scrub(err, e.password))
	}
	return c, nil
}

// physicalBackup streams BASE_BACKUP's archives, one artifact per
// tablespace plus backup_manifest, without touching local disk. WAL is
// not included: it comes from the WAL archive (wal-push or wal-receive),
// and the server waits until the last segment the backup needs has been
// archived (on a primary with archive_mode on).
func (p *Postgres) physicalBackup(ctx context.Context, req store.BackupRequest) (*store.BackupResult, error) {
	facts, err := p.physicalFacts(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := p.ep.replicationConn(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close(context.Background())
	label := "linkdr " + time.Now().UTC().Format(time.RFC3339)
	src := PhysicalSource{
		Host: p.ep.hostPort(), ServerVersion: facts.Version, ServerVersionNum: facts.VersionNum,
		SystemIdentifier: facts.SystemIdentifier, InRecovery: facts.InRecovery, Label: label,
		WALSegmentSize: facts.segSize, BlockSize: facts.blockSize,
	}
	bb := &baseBackup{conn: rc, sink: req.Sink}
	opts := fmt.Sprintf("LABEL %s, CHECKPOINT 'fast', WAIT true, MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', TABLESPACE_MAP true", quoteLiteral(label))
	// The server compresses with zstd on its own threads when linkdr can
	// store its frames as they are (the artifact format is the same): the
	// data crosses the network compressed and is compressed once, in C.
	if _, ok := req.Sink.(store.CompressedSink); ok && p.serverZstd {
		opts += fmt.Sprintf(", COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=%d,workers=%d'", zstdLevel(p.level), serverZstdWorkers)
	}
	req.Log.Info("base backup started", "in_recovery", facts.InRecovery)
	err = bb.run(ctx, "BASE_BACKUP ("+opts+")")
	if err != nil && bb.started == 0 && strings.Contains(opts, "COMPRESSION") && ctx.Err() == nil {
		// A server built without zstd: back up uncompressed and compress here.
		req.Log.Info("server-side zstd unavailable; compressing in linkdr", "err", err)
		rc.Close(context.Background())
		if rc, err = p.ep.replicationConn(ctx); err != nil {
			return nil, err
		}
		defer rc.Close(context.Background())
		bb = &baseBackup{conn: rc, sink: req.Sink}
		err = bb.run(ctx, "BASE_BACKUP ("+strings.SplitN(opts, ", COMPRESSION", 2)[0]+")")
	}
	if err != nil {
		bb.abort()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("base backup: %w", err)
	}
	src.StartLSN, src.Timeline = bb.start, bb.startTLI
	src.StopLSN, src.StopTimeline = bb.stop, bb.stopTLI
	src.StartWAL = wal.SegmentName(src.Timeline, wal.SegNoOf(src.StartLSN, src.WALSegmentSize), src.WALSegmentSize).String()
	// The stop LSN points just past the last record needed; the segment
	// holding the byte before it is the last one replay must read.
	last := src.StopLSN
	if last > 0 {
		last--
	}
	src.StopWAL = wal.SegmentName(src.StopTimeline, wal.SegNoOf(last, src.WALSegmentSize), src.WALSegmentSize).String()
	src.Tablespaces = bb.tablespaces
	stats, err := manifestStats(bb.manifest.Bytes())
	if err != nil {
		return nil, err
	}
	// Consistent at the stop point; the server's clock right after it is
	// a safe upper bound (a --to-time before it must use an older backup).
	var stopped time.Time
	if c, err := p.ep.connect(ctx); err == nil {
		c.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&stopped)
		c.Close(context.Background())
	}
	if stopped.IsZero() {
		stopped = time.Now()
	}
	req.Log.Info("base backup complete", "start_lsn", src.StartLSN, "stop_lsn", src.StopLSN, "files", stats.Files)
	return &store.BackupResult{ConsistentAt: stopped.UTC(), Source: src, Stats: stats}, nil
}

// baseBackup reads the replication protocol's answer to BASE_BACKUP
// (PostgreSQL 15+): two result sets (start position, tablespaces), one
// CopyOut stream of archives ('n' new archive, 'd' data, 'm' manifest
// follows, 'p' progress), then the stop position.
type baseBackup struct {
	conn *pgconn.PgConn
	sink store.Sink

	start, stop       wal.LSN
	startTLI, stopTLI uint32
	tablespaces       []Tablespace
	locations         map[uint32]string
	started           int // archives begun
	cur               io.WriteCloser
	manifest          bytes.Buffer
	inManifest        bool
}

func (b *baseBackup) run(ctx context.Context, sql string) error {
	// Cancelling ctx closes the connection: the server ends the backup.
	stop := context.AfterFunc(ctx, func() { b.conn.Close(context.Background()) })
	defer stop()
	b.conn.Frontend().SendQuery(&pgproto3.Query{String: sql})
	if err := b.conn.Frontend().Flush(); err != nil {
		return fmt.Errorf("send BASE_BACKUP: %w", err)
	}
	b.locations = map[uint32]string{}
	results := 0
	var row []string
	for {
		msg, err := b.conn.ReceiveMessage(ctx)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			row = nil
		case *pgproto3.DataRow:
			vals := make([]string, len(m.Values))
			for i, v := range m.Values {
				vals[i] = string(v)
			}
			if results == 1 && len(vals) == 3 && m.Values[0] != nil { // a tablespace other than base
				oid, _ := strconv.ParseUint(vals[0], 10, 32)
				b.locations[uint32(oid)] = vals[1]
			}
			row = vals
		case *pgproto3.CommandComplete:
			switch {
			case results == 0 && len(row) == 2:
				if err := b.position(row, &b.start, &b.startTLI); err != nil {
					return err
				}
			case results == 2 && len(row) == 2:
				if err := b.position(row, &b.stop, &b.stopTLI); err != nil {
					return err
				}
			}
			results++
		case *pgproto3.CopyOutResponse:
		case *pgproto3.CopyData:
			if err := b.copyData(ctx, m.Data); err != nil {
				return err
			}
		case *pgproto3.CopyDone:
			if err := b.closeCurrent(); err != nil {
				return err
			}
		case *pgproto3.NoticeResponse:
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.ReadyForQuery:
			if b.stop == 0 {
				return errors.New("server ended the backup without a stop position")
			}
			if b.manifest.Len() == 0 {
				return errors.New("server sent no backup_manifest")
			}
			return nil
		default:
			return fmt.Errorf("unexpected message %T", msg)
		}
	}
}

func (b *baseBackup) position(row []string, lsn *wal.LSN, tli *uint32) error {
	l, err := wal.ParseLSN(row[0])
	if err != nil {
		return err
	}
	t, err := strconv.ParseUint(row[1], 10, 32)
	if err != nil {
		return fmt.Errorf("timeline %q", row[1])
	}
	*lsn, *tli = l, uint32(t)
	return nil
}

func (b *baseBackup) copyData(ctx context.Context, d []byte) error {
	if len(d) == 0 {
		return errors.New("empty CopyData message")
	}
	switch d[0] {
	case 'n': // new archive: name, tablespace location
		if err := b.closeCurrent(); err != nil {
			return err
		}
		parts := bytes.SplitN(d[1:], []byte{0}, 3)
		if len(parts) < 2 {
			return errors.New("malformed new-archive message")
		}
		name, location := string(parts[0]), string(parts[1])
		compressed := strings.HasSuffix(name, ".zst")
		name = strings.TrimSuffix(name, ".zst")
		b.started++
		ts := Tablespace{Artifact: name, Location: location}
		if oid, err := strconv.ParseUint(strings.TrimSuffix(name, ".tar"), 10, 32); err == nil {
			ts.OID = uint32(oid)
		}
		meta := map[string]string{}
		if ts.OID != 0 {
			meta["tablespace_oid"] = strconv.FormatUint(uint64(ts.OID), 10)
			meta["location"] = location
		}
		var w io.WriteCloser
		var err error
		if cs, ok := b.sink.(store.CompressedSink); ok && compressed {
			w, err = cs.CreateCompressedArtifact(ctx, name, MediaTypeTar, meta)
		} else if compressed {
			err = errors.New("the server compressed an archive but the repository cannot store it as it is")
		} else {
			w, err = b.sink.CreateArtifact(ctx, name, MediaTypeTar, meta)
		}
		if err != nil {
			return err
		}
		// The envelope compresses frames on every core in the background,
		// so writing straight into it already overlaps receiving with
		// compressing; another buffer would only add a copy.
		b.cur = w
		b.tablespaces = append(b.tablespaces, ts)
	case 'm': // the manifest follows
		if err := b.closeCurrent(); err != nil {
			return err
		}
		b.inManifest = true
	case 'd':
		if b.inManifest {
			b.manifest.Write(d[1:])
			return nil
		}
		if b.cur == nil {
			return errors.New("archive data before any archive began")
		}
		_, err := b.cur.Write(d[1:])
		return err
	case 'p':
	default:
		return fmt.Errorf("unknown CopyData message type %q", d[0])
	}
	return nil
}

func (b *baseBackup) closeCurrent() error {
	if b.inManifest && b.manifest.Len() > 0 {
		b.inManifest = false
		w, err := b.sink.CreateArtifact(context.Background(), ManifestArtifact, MediaTypeManifest, nil)
		if err != nil {
			return err
		}
		if _, err := w.Write(b.manifest.Bytes()); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
	if b.cur == nil {
		return nil
	}
	err := b.cur.Close()
	b.cur = nil
	return err
}

func (b *baseBackup) abort() {
	if ab, ok := b.cur.(interface{ Abort() }); ok {
		ab.Abort()
	}
}

// pgManifest is the part of PostgreSQL's backup_manifest linkdr reads.
type pgManifest struct {
	Version int `json:"PostgreSQL-Backup-Manifest-Version"`
	Files   []struct {
		Path        string `json:"Path"`
		EncodedPath string `json:"Encoded-Path"`
		Size        int64  `json:"Size"`
		Algorithm   string `json:"Checksum-Algorithm"`
		Checksum    string `json:"Checksum"`
	} `json:"Files"`
	WALRanges []struct {
		Timeline uint32  `json:"Timeline"`
		Start    wal.LSN `json:"Start-LSN"`
		End      wal.LSN `json:"End-LSN"`
	} `json:"WAL-Ranges"`
}

func parseManifest(b []byte) (*pgManifest, error) {
	var m pgManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("backup_manifest: %w", err)
	}
	if m.Version < 1 || len(m.Files) == 0 {
		return nil, fmt.Errorf("backup_manifest: version %d with %d files: not a PostgreSQL backup manifest", m.Version, len(m.Files))
	}
	return &m, nil
}

func manifestStats(b []byte) (PhysicalStats, error) {
	m, err := parseManifest(b)
	if err != nil {
		return PhysicalStats{}, err
	}
	st := PhysicalStats{Files: len(m.Files)}
	for _, f := range m.Files {
		st.Bytes += f.Size
		if f.Algorithm != "" {
			st.Checksums = f.Algorithm
		}
	}
	return st, nil
}
