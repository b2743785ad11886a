package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/linkapp/linkdr/internal/store/postgres/wal"
)

// Replication is the state of streaming replication as one server sees
// it: on a primary its standbys and slots, on a standby its WAL receiver
// and replay delay.
type Replication struct {
	Server     string    `json:"server"`
	InRecovery bool      `json:"in_recovery"`
	CurrentLSN wal.LSN   `json:"current_lsn"`
	CheckedAt  time.Time `json:"checked_at"`
	// Standbys connected to this server (pg_stat_replication).
	Standbys []Standby `json:"standbys"`
	// Slots on this server (pg_replication_slots).
	Slots []Slot `json:"slots"`
	// Receiver is set on a standby (pg_stat_wal_receiver and replay).
	Receiver *Receiver `json:"receiver,omitempty"`
}

// Standby is one replication connection.
type Standby struct {
	Name      string  `json:"application_name"`
	Client    string  `json:"client_addr"`
	State     string  `json:"state"`
	SyncState string  `json:"sync_state"`
	SentLSN   wal.LSN `json:"sent_lsn"`
	FlushLSN  wal.LSN `json:"flush_lsn"`
	ReplayLSN wal.LSN `json:"replay_lsn"`
	// ReplayLagBytes is how much WAL the standby has not replayed yet;
	// ReplayLagSeconds PostgreSQL's replay_lag (0 when idle).
	ReplayLagBytes   int64   `json:"replay_lag_bytes"`
	ReplayLagSeconds float64 `json:"replay_lag_seconds"`
	FlushLagSeconds  float64 `json:"flush_lag_seconds"`
}

// Slot is one replication slot.
type Slot struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Active     bool    `json:"active"`
	RestartLSN wal.LSN `json:"restart_lsn"`
	// RetainedBytes is the WAL the server keeps for this slot.
	RetainedBytes int64  `json:"retained_bytes"`
	WALStatus     string `json:"wal_status"`
}

// Receiver is a standby's view of its upstream.
type Receiver struct {
	Status      string  `json:"status"`
	Sender      string  `json:"sender"`
	ReceivedLSN wal.LSN `json:"received_lsn"`
	ReplayLSN   wal.LSN `json:"replay_lsn"`
	// ReplayLagBytes is received but not yet replayed WAL.
	ReplayLagBytes int64 `json:"replay_lag_bytes"`
	// ReplayDelaySeconds is the age of the last replayed transaction: on
	// a busy primary, how far behind the standby's data is in time.
	ReplayDelaySeconds float64 `json:"replay_delay_seconds"`
}

// ReplicationLimits are thresholds for Problems; zero disables one.
type ReplicationLimits struct {
	MaxLagBytes     int64
	MaxLag          time.Duration
	MaxRetained     int64
	MinStandbys     int
	InactiveSlotsOK bool
}

// Replication reads the replication state of the store's server.
func (p *Postgres) Replication(ctx context.Context) (*Replication, error) {
	c, err := p.ep.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	return replicationState(ctx, c, p.ep.String())
}

// ReplicationAt reads the replication state of any server by URL, for
// checks and runbooks that are not tied to a store of the plan.
func ReplicationAt(ctx context.Context, url, passwordFile string) (*Replication, error) {
	ep, err := parseEndpoint(url, passwordFile)
	if err != nil {
		return nil, err
	}
	c, err := ep.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	return replicationState(ctx, c, ep.String())
}

func replicationState(ctx context.Context, c *pgx.Conn, server string) (*Replication, error) {
	r := &Replication{Server: server, CheckedAt: time.Now().UTC()}
	var cur string
	err := c.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		(CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') ELSE pg_current_wal_lsn() END)::text`).Scan(&r.InRecovery, &cur)
	if err != nil {
		return nil, fmt.Errorf("replication state: %w", err)
	}
	r.CurrentLSN, _ = wal.ParseLSN(cur)
	rows, err := c.Query(ctx, `SELECT coalesce(application_name, ''), coalesce(client_addr::text, 'local'), coalesce(state, ''), coalesce(sync_state, ''),
		coalesce(sent_lsn, '0/0')::text, coalesce(flush_lsn, '0/0')::text, coalesce(replay_lsn, '0/0')::text,
		coalesce(extract(epoch FROM replay_lag), 0)::float8, coalesce(extract(epoch FROM flush_lag), 0)::float8
		FROM pg_stat_replication ORDER BY application_name`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	for rows.Next() {
		var s Standby
		var sent, flush, replay string
		if err := rows.Scan(&s.Name, &s.Client, &s.State, &s.SyncState, &sent, &flush, &replay, &s.ReplayLagSeconds, &s.FlushLagSeconds); err != nil {
			return nil, err
		}
		s.SentLSN, _ = wal.ParseLSN(sent)
		s.FlushLSN, _ = wal.ParseLSN(flush)
		s.ReplayLSN, _ = wal.ParseLSN(replay)
		s.ReplayLagBytes = max(int64(r.CurrentLSN)-int64(s.ReplayLSN), 0)
		r.Standbys = append(r.Standbys, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = c.Query(ctx, `SELECT slot_name, slot_type, active, coalesce(restart_lsn, '0/0')::text, coalesce(wal_status, '') FROM pg_replication_slots ORDER BY slot_name`)
	if err != nil {
		return nil, fmt.Errorf("read pg_replication_slots: %w", err)
	}
	for rows.Next() {
		var s Slot
		var restart string
		if err := rows.Scan(&s.Name, &s.Type, &s.Active, &restart, &s.WALStatus); err != nil {
			return nil, err
		}
		s.RestartLSN, _ = wal.ParseLSN(restart)
		if s.RestartLSN > 0 {
			s.RetainedBytes = max(int64(r.CurrentLSN)-int64(s.RestartLSN), 0)
		}
		r.Slots = append(r.Slots, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if r.InRecovery {
		rc := &Receiver{}
		var recv, replay string
		var delay *float64
		err := c.QueryRow(ctx, `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'not running'),
			coalesce((SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver), ''),
			coalesce(pg_last_wal_receive_lsn(), '0/0')::text, coalesce(pg_last_wal_replay_lsn(), '0/0')::text,
			extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8`).Scan(&rc.Status, &rc.Sender, &recv, &replay, &delay)
		if err != nil {
			return nil, fmt.Errorf("read WAL receiver: %w", err)
		}
		rc.ReceivedLSN, _ = wal.ParseLSN(recv)
		rc.ReplayLSN, _ = wal.ParseLSN(replay)
		rc.ReplayLagBytes = max(int64(rc.ReceivedLSN)-int64(rc.ReplayLSN), 0)
		if delay != nil {
			rc.ReplayDelaySeconds = *delay
		}
		r.Receiver = rc
	}
	return r, nil
}

// Problems lists what is outside the limits; empty means healthy.
func (r *Replication) Problems(l ReplicationLimits) []string {
	var out []string
	streaming := 0
	for _, s := range r.Standbys {
		if s.State == "streaming" {
			streaming++
		}
		if l.MaxLagBytes > 0 && s.ReplayLagBytes > l.MaxLagBytes {
			out = append(out, fmt.Sprintf("standby %s is %d bytes behind (limit %d)", s.Name, s.ReplayLagBytes, l.MaxLagBytes))
		}
		if l.MaxLag > 0 && s.ReplayLagSeconds > l.MaxLag.Seconds() {
			out = append(out, fmt.Sprintf("standby %s replays %.1fs behind (limit %s)", s.Name, s.ReplayLagSeconds, l.MaxLag))
		}
	}
	if streaming < l.MinStandbys {
		out = append(out, fmt.Sprintf("%d standby(s) streaming, want at least %d", streaming, l.MinStandbys))
	}
	for _, s := range r.Slots {
		if !s.Active && !l.InactiveSlotsOK {
			out = append(out, fmt.Sprintf("slot %s is inactive: the server keeps WAL for it (%d bytes so far)", s.Name, s.RetainedBytes))
		}
		if l.MaxRetained > 0 && s.RetainedBytes > l.MaxRetained {
			out = append(out, fmt.Sprintf("slot %s retains %d bytes of WAL (limit %d)", s.Name, s.RetainedBytes, l.MaxRetained))
		}
		if s.WALStatus == "lost" || s.WALStatus == "unreserved" {
			out = append(out, fmt.Sprintf("slot %s: WAL %s (max_slot_wal_keep_size reached)", s.Name, s.WALStatus))
		}
	}
	if rc := r.Receiver; rc != nil {
		if rc.Status != "streaming" {
			out = append(out, fmt.Sprintf("WAL receiver is %s", rc.Status))
		}
		if l.MaxLagBytes > 0 && rc.ReplayLagBytes > l.MaxLagBytes {
			out = append(out, fmt.Sprintf("replay is %d bytes behind receipt (limit %d)", rc.ReplayLagBytes, l.MaxLagBytes))
		}
		// An idle primary makes the last replayed commit old without any
		// lag: only count the delay while WAL is waiting to be replayed.
		if l.MaxLag > 0 && rc.ReplayLagBytes > 0 && rc.ReplayDelaySeconds > l.MaxLag.Seconds() {
			out = append(out, fmt.Sprintf("replay is %.1fs behind (limit %s)", rc.ReplayDelaySeconds, l.MaxLag))
		}
	}
	return out
}
