// Package metrics is what `linkdr serve` exports to Prometheus, on its own
// registry. Posture gauges (RPO exposure, copy lag, WAL lag, last
// success times) are computed at scrape time from the latest reading of
// the repositories, so an exposure keeps growing between readings and
// every replica, leader or not, exports the same numbers. Counters of
// work done (failures, bytes copied) are kept by the replica that did it.
package metrics

import (
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/linkapp/linkdr/internal/ops"
)

// Metrics holds the collectors of one daemon.
type Metrics struct {
	Registry *prometheus.Registry

	BackupFailures    *prometheus.CounterVec
	BackupLastFailure *prometheus.GaugeVec
	VerifyFailures    *prometheus.CounterVec
	VerifyLastFailure *prometheus.GaugeVec
	CopyObjects       *prometheus.CounterVec
	CopyBytes         *prometheus.CounterVec
	CopyFailures      *prometheus.CounterVec
	CopyLastSuccess   *prometheus.GaugeVec
	RetentionDeleted  *prometheus.CounterVec
	RetentionFailures *prometheus.CounterVec
	RetentionLast     *prometheus.GaugeVec
	JobRuns           *prometheus.CounterVec
	DrillFailures     *prometheus.CounterVec
	Leader            prometheus.Gauge
}

// Source gives the collector the latest posture (nil before the first
// reading) and the clock.
type Source struct {
	Posture func() *ops.Posture
	// Up reports whether each repository answered the last reading.
	Now func() time.Time
	// Drills is what the drill reports say of each drill of the plan
	// (nil: no drill gauges).
	Drills func() []Drill
}

// Drill is what the reports in the primary repository say of one drill
// of the plan.
type Drill struct {
	Name string
	// Scheduled: the plan gives the drill a schedule (a missed one is
	// overdue), as opposed to an on-demand drill.
	Scheduled bool
	// LastRun is when the newest run started (zero: it never ran); the
	// fields up to RPO describe that run.
	LastRun time.Time
	LastOK  bool
	// RTO is the measured RTO (the slowest store's restore and
	// validation; the rehearsal's duration for failover drills), against
	// RTOObjective, the objective the drill was judged by. RPO is the
	// largest data loss an outage at drill time would have caused.
	RTO, RTOObjective, RPO time.Duration
	HasRTO, HasRPO         bool
	// LastSuccess is when the newest passing run started (zero: none).
	LastSuccess time.Time
}

// New registers everything on a fresh registry.
func New(version string, src Source) *Metrics {
	reg := prometheus.NewRegistry()
	sm := []string{"store", "method"}
	sr := []string{"store", "repository"}
	r := []string{"repository"}
	m := &Metrics{
		Registry: reg,
		BackupFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_backup_failures_total",
			Help: "Backups that failed, by store and method (counted by the replica that ran them)."}, sm),
		BackupLastFailure: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkdr_backup_last_failure_timestamp_seconds",
			Help: "When the last failed backup ended (Unix time)."}, sm),
		VerifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_verify_failures_total",
			Help: "Verifications of a store's newest backup that failed."}, sr),
		VerifyLastFailure: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkdr_verify_last_failure_timestamp_seconds",
			Help: "When the last failed verification ended (Unix time)."}, sr),
		CopyObjects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_copy_objects_total",
			Help: "Objects copied into a copy repository and verified."}, r),
		CopyBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_copy_bytes_total",
			Help: "Bytes copied into a copy repository and verified."}, r),
		CopyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_copy_failures_total",
			Help: "Copy passes that ended with an error."}, r),
		CopyLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkdr_copy_last_success_timestamp_seconds",
			Help: "When the last copy pass that left nothing pending ended (Unix time)."}, r),
		RetentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_retention_deleted_total",
			Help: "Backups deleted by the retention policy."}, r),
		RetentionFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_retention_failures_total",
			Help: "Retention passes that ended with an error."}, r),
		RetentionLast: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linkdr_retention_last_success_timestamp_seconds",
			Help: "When retention last completed without error (Unix time)."}, r),
		JobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_job_runs_total",
			Help: "Scheduled, catch-up and manual job runs by kind and result (ok, failed, aborted)."}, []string{"kind", "result"}),
		DrillFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linkdr_drill_failures_total",
			Help: "Drill runs that failed, by drill (counted by the replica that ran them)."}, []string{"drill"}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkdr_leader",
			Help: "1 if this replica leads (schedules work), else 0."}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "linkdr_build_info",
		Help:        "Build of the running linkdr (always 1).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}})
	build.Set(1)
	reg.MustRegister(m.BackupFailures, m.BackupLastFailure, m.VerifyFailures, m.VerifyLastFailure,
		m.CopyObjects, m.CopyBytes, m.CopyFailures, m.CopyLastSuccess, m.RetentionDeleted, m.RetentionFailures,
		m.RetentionLast, m.JobRuns, m.DrillFailures, m.Leader, build,
		&postureCollector{src: src}, drillCollector{src: src},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var (
	dExposure = prometheus.NewDesc("linkdr_rpo_exposure_seconds",
		"Age of the newest restorable backup of a store: the data an outage now would lose. +Inf when there is none.", []string{"store"}, nil)
	dObjective = prometheus.NewDesc("linkdr_rpo_objective_seconds",
		"RPO objective of a store, from the plan.", []string{"store"}, nil)
	dCopyExposure = prometheus.NewDesc("linkdr_copy_rpo_exposure_seconds",
		"Age of the newest backup of a store that reached a copy repository (the DR region). +Inf when none did.", []string{"store", "repository"}, nil)
	dLastSuccess = prometheus.NewDesc("linkdr_backup_last_success_timestamp_seconds",
		"When the newest backup of a store by a method finished (Unix time), from the repository.", []string{"store", "method"}, nil)
	dDuration = prometheus.NewDesc("linkdr_backup_duration_seconds",
		"How long the newest backup of a store by a method took.", []string{"store", "method"}, nil)
	dSize = prometheus.NewDesc("linkdr_backup_size_bytes",
		"Stored size of the newest backup of a store by a method.", []string{"store", "method"}, nil)
	dBackups = prometheus.NewDesc("linkdr_backups",
		"Complete backups of a store in its repository.", []string{"store"}, nil)
	dVerify = prometheus.NewDesc("linkdr_verify_last_success_timestamp_seconds",
		"When the newest backup of a store was last verified successfully in a repository (Unix time).", []string{"store", "repository"}, nil)
	dWAL = prometheus.NewDesc("linkdr_wal_archive_lag_seconds",
		"Age of the newest object in a store's WAL archive (only for stores that archive WAL).", []string{"store"}, nil)
	dCopyLag = prometheus.NewDesc("linkdr_copy_lag_seconds",
		"Age of the oldest object of the source that a copy repository still lacks; 0 when in sync.", []string{"repository"}, nil)
	dCopyPending = prometheus.NewDesc("linkdr_copy_pending_objects",
		"Objects of the source that a copy repository still lacks.", []string{"repository"}, nil)
	dRepoBytes = prometheus.NewDesc("linkdr_repository_bytes",
		"Bytes of data (backups, WAL, drills, runs) in a repository.", []string{"repository"}, nil)
	dRepoUp = prometheus.NewDesc("linkdr_repository_up",
		"1 if the repository answered the last reading, else 0.", []string{"repository"}, nil)
	dPostureAge = prometheus.NewDesc("linkdr_posture_timestamp_seconds",
		"When the repositories were last read (Unix time).", nil, nil)
)

// postureCollector turns the latest posture into gauges at scrape time.
type postureCollector struct {
	src Source
	mu  sync.Mutex
}

func (c *postureCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dExposure, dObjective, dCopyExposure, dLastSuccess, dDuration, dSize, dBackups,
		dVerify, dWAL, dCopyLag, dCopyPending, dRepoBytes, dRepoUp, dPostureAge} {
		ch <- d
	}
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func (c *postureCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.src.Posture()
	if p == nil {
		return
	}
	now := c.src.Now()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	g(dPostureAge, unix(p.At))
	for _, s := range p.Stores {
		g(dObjective, seconds(s.RPO), s.Store)
		if s.LatestID != "" {
			g(dExposure, seconds(max(now.Sub(s.ConsistentAt), 0)), s.Store)
		} else if s.State != ops.StateUnknown {
			g(dExposure, math.Inf(1), s.Store)
		}
		if s.State != ops.StateUnknown {
			g(dBackups, float64(s.Backups), s.Store)
		}
		newest := map[string]ops.BackupRef{}
		for _, b := range s.Recent {
			if b.Finished.After(newest[b.Method].Finished) {
				newest[b.Method] = b
			}
		}
		methods := make([]string, 0, len(newest))
		for k := range newest {
			methods = append(methods, k)
		}
		sort.Strings(methods)
		for _, m := range methods {
			b := newest[m]
			g(dLastSuccess, unix(b.Finished), s.Store, m)
			g(dDuration, seconds(b.Finished.Sub(b.Started)), s.Store, m)
			g(dSize, float64(b.StoredBytes), s.Store, m)
		}
		if s.Verify != nil && !s.Verify.LastSuccess.IsZero() {
			g(dVerify, unix(s.Verify.LastSuccess), s.Store, s.Repository)
		}
		for _, cp := range s.Copies {
			if cp.Verify != nil && !cp.Verify.LastSuccess.IsZero() {
				g(dVerify, unix(cp.Verify.LastSuccess), s.Store, cp.Repository)
			}
			switch {
			case cp.LatestID != "":
				g(dCopyExposure, seconds(max(now.Sub(cp.ConsistentAt), 0)), s.Store, cp.Repository)
			case cp.State != ops.StateUnknown:
				g(dCopyExposure, math.Inf(1), s.Store, cp.Repository)
			}
		}
		if !s.WALNewest.IsZero() {
			g(dWAL, seconds(max(now.Sub(s.WALNewest), 0)), s.Store)
		}
	}
	for _, r := range p.Repositories {
		up := 0.0
		if r.Reachable {
			up = 1
			g(dRepoBytes, float64(r.Bytes), r.Name)
		}
		g(dRepoUp, up, r.Name)
		if r.CopyFrom != "" && r.Reachable && r.CopyError == "" {
			lag := 0.0
			if !r.CopyOldest.IsZero() {
				lag = seconds(max(now.Sub(r.CopyOldest), 0))
			}
			g(dCopyLag, lag, r.Name)
			g(dCopyPending, float64(r.CopyPending), r.Name)
		}
	}
}

var (
	dDrillScheduled = prometheus.NewDesc("linkdr_drill_scheduled",
		"1 if the plan schedules the drill, 0 if it runs on demand only.", []string{"drill"}, nil)
	dDrillLastRun = prometheus.NewDesc("linkdr_drill_last_run_timestamp_seconds",
		"When the newest run of a drill started (Unix time), from the drill reports.", []string{"drill"}, nil)
	dDrillLastSuccess = prometheus.NewDesc("linkdr_drill_last_success_timestamp_seconds",
		"When the newest passing run of a drill started (Unix time), from the drill reports.", []string{"drill"}, nil)
	dDrillLastResult = prometheus.NewDesc("linkdr_drill_last_result",
		"1 if the newest run of a drill passed, 0 if it failed.", []string{"drill"}, nil)
	dDrillRTO = prometheus.NewDesc("linkdr_drill_rto_seconds",
		"Measured RTO of the newest run of a drill: the slowest store's restore and validation, or the rehearsed runbook's duration.", []string{"drill"}, nil)
	dDrillRTOObjective = prometheus.NewDesc("linkdr_drill_rto_objective_seconds",
		"The RTO objective the newest run of a drill was judged by (the plan's, or the scenario's for failover drills).", []string{"drill"}, nil)
	dDrillRPO = prometheus.NewDesc("linkdr_drill_rpo_seconds",
		"Measured RPO of the newest run of a restore drill: the largest age, among its stores, of the newest restorable backup at drill time.", []string{"drill"}, nil)
)

// drillCollector turns the drill reports' summary into gauges. Every
// replica reads the reports, so every replica exports the same values.
type drillCollector struct{ src Source }

func (c drillCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dDrillScheduled, dDrillLastRun, dDrillLastSuccess, dDrillLastResult, dDrillRTO, dDrillRTOObjective, dDrillRPO} {
		ch <- d
	}
}

func (c drillCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Drills == nil {
		return
	}
	g := func(d *prometheus.Desc, v float64, name string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
	}
	for _, d := range c.src.Drills() {
		sched := 0.0
		if d.Scheduled {
			sched = 1
		}
		g(dDrillScheduled, sched, d.Name)
		if !d.LastSuccess.IsZero() {
			g(dDrillLastSuccess, unix(d.LastSuccess), d.Name)
		}
		if d.LastRun.IsZero() {
			continue
		}
		g(dDrillLastRun, unix(d.LastRun), d.Name)
		ok := 0.0
		if d.LastOK {
			ok = 1
		}
		g(dDrillLastResult, ok, d.Name)
		if d.HasRTO {
			g(dDrillRTO, seconds(d.RTO), d.Name)
			if d.RTOObjective > 0 {
				g(dDrillRTOObjective, seconds(d.RTOObjective), d.Name)
			}
		}
		if d.HasRPO {
			g(dDrillRPO, seconds(d.RPO), d.Name)
		}
	}
}
