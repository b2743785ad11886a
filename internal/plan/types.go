package plan

import "slices"

// Plan is a decoded, defaulted plan file. Zero values mean "not set" only
// before Default has been applied by Load; after Load every field holds
// the value linkdr will use.
type Plan struct {
	// Version of the plan file format. Only 1 exists.
	Version int    `yaml:"version"`
	Name    string `yaml:"name"`

	Objectives   Objectives            `yaml:"objectives"`
	Encryption   Encryption            `yaml:"encryption"`
	Repositories map[string]Repository `yaml:"repositories"`
	Stores       map[string]*Store     `yaml:"stores"`
	Retention    Retention             `yaml:"retention"`
	Verify       Verify                `yaml:"verify"`
	Serve        Serve                 `yaml:"serve"`
	// Checks and checklists validate a recovery (docs/checks.md).
	Checks     map[string]*Check     `yaml:"checks"`
	Checklists map[string]*Checklist `yaml:"checklists"`
	// Drills exercise the plan on a schedule (docs/drills.md).
	Drills map[string]*Drill `yaml:"drills"`
	// Document is what only the rendered plan shows (contacts, regions…).
	Document Document `yaml:"document"`

	// Vars are named values that runbook step parameters refer to as
	// {{.Vars.name}}; a scenario's vars and `--var` override them.
	Vars          map[string]string    `yaml:"vars"`
	Kubernetes    Kubernetes           `yaml:"kubernetes"`
	DNS           DNS                  `yaml:"dns"`
	Notifications Notifications        `yaml:"notifications"`
	Incidents     Incidents            `yaml:"incidents"`
	Runbooks      Runbooks             `yaml:"runbooks"`
	Scenarios     map[string]*Scenario `yaml:"scenarios"`

	// Path is the file the plan was read from (not part of the YAML).
	Path string `yaml:"-"`
	// positions maps a path such as "stores.users-db.url" to its line.
	positions map[string]int
}

// Objectives are the promises of the DR plan. Stores may override RPO.
type Objectives struct {
	// RTO is the longest acceptable time to recover. Default 4h.
	RTO Duration `yaml:"rto"`
	// RPO is the most data, in time, that may be lost. Default 1h.
	RPO Duration `yaml:"rpo"`
	// Availability as a percentage string, e.g. "99.9%". Informational.
	Availability string `yaml:"availability"`
	// Retention is how long backups must be restorable (compliance), e.g. 7y.
	// `plan check` warns when the retention policy cannot reach it.
	Retention Duration `yaml:"retention"`
}

// Encryption names who can read backups. Backing up needs only Recipients
// (public keys); restore and verify need the identity file.
type Encryption struct {
	Recipients []string `yaml:"recipients"`
	// IdentityFile is the age private key. LINKDR_AGE_IDENTITY_FILE overrides
	// it. Relative paths are relative to the plan file.
	IdentityFile string `yaml:"identity_file"`
	// Compression level 1 (fastest) to 4 (smallest). Default 2.
	CompressionLevel int `yaml:"compression_level"`
}

// Repository is where backups live.
type Repository struct {
	// URL: file:///dir, s3://bucket/prefix?region=…&endpoint=…&use_path_style=true,
	// or mem:// (tests). May contain ${ENV} references.
	URL string `yaml:"url"`
	// CopyFrom names another repository whose objects `linkdr serve`
	// copies here (cross-region copy): every backup, WAL segment, drill
	// report and run journal, each verified by checksum. Empty: none.
	CopyFrom string `yaml:"copy_from"`
	// ObjectLock, for s3:// repositories in a bucket with Object Lock
	// enabled, sets a retention on every object linkdr writes. Nil: none.
	ObjectLock *ObjectLock `yaml:"object_lock"`
}

// ObjectLock is S3 Object Lock retention for a repository's objects.
type ObjectLock struct {
	// Mode is governance (can be lifted by a privileged user) or
	// compliance (nobody, not even the account root, can delete before
	// the date).
	Mode string `yaml:"mode"`
	// Days each object stays locked after its backup started.
	Days int `yaml:"days"`
}

// Store is one data store to protect.
type Store struct {
	// Kind selects the implementation: postgres, redis, qdrant, s3.
	Kind string `yaml:"kind"`
	// URL of the server. May contain ${ENV} references; a password is
	// better kept in PasswordFile.
	URL Secret `yaml:"url"`
	// PasswordFile holds the password for URL, read at run time.
	PasswordFile string `yaml:"password_file"`
	// Repository to back up into. Default "primary".
	Repository string `yaml:"repository"`
	// RPO overrides objectives.rpo for this store.
	RPO Duration `yaml:"rpo"`
	// Backups are the methods and their schedules.
	Backups []BackupSpec `yaml:"backups"`

	// postgres: databases to dump; empty means every non-template database.
	// redis: database numbers for method resp; empty means every database
	// that holds keys (a cluster has only 0).
	Databases []string `yaml:"databases"`
	// postgres: directory with pg_dump/pg_restore. Default: the binaries
	// matching the server's major version, found on this machine.
	PGBinDir string `yaml:"pg_bin_dir"`
	// postgres: continuous WAL archiving for point-in-time recovery. Nil
	// means none: only the scheduled backups protect the store.
	WAL *WAL `yaml:"wal"`

	// qdrant: collections to snapshot; empty means every collection.
	Collections []string `yaml:"collections"`
	// qdrant: API key sent as the api-key header. May be ${ENV}; better
	// kept in APIKeyFile.
	APIKey Secret `yaml:"api_key"`
	// qdrant: file holding the API key, read at run time.
	APIKeyFile string `yaml:"api_key_file"`
	// qdrant: REST URLs of every node of a distributed deployment; each
	// node's local shards are snapshotted separately. Empty: url only.
	Nodes []string `yaml:"nodes"`

	// s3: the bucket that replicates this one (cross-region replication),
	// compared by `linkdr s3 verify-replication`.
	Replica *Replica `yaml:"replica"`

	// Name is the key under stores (not part of the YAML).
	Name string `yaml:"-"`
}

// WAL is how a PostgreSQL store's write-ahead log reaches the repository
// between base backups (method physical).
type WAL struct {
	// Mode is archive (the server's archive_command runs `linkdr wal-push
	// %p` once per completed segment) or stream (`linkdr wal-receive`
	// streams WAL over a replication slot and uploads the current segment
	// every PartialInterval).
	Mode string `yaml:"mode"`
	// Slot is the physical replication slot of stream mode. Default
	// linkdr_<store> with dashes as underscores.
	Slot string `yaml:"slot"`
	// PartialInterval is how often stream mode uploads the segment being
	// written. Default 2s; it bounds the RPO of stream mode.
	PartialInterval Duration `yaml:"partial_interval"`
	// Prefetch is how many segments `linkdr wal-fetch` downloads ahead of
	// recovery. Default 8; 0 turns it off.
	Prefetch *int `yaml:"prefetch"`
}

// WAL modes.
const (
	WALArchive = "archive"
	WALStream  = "stream"
)

// BackupSpec is one backup method of a store and when it runs.
type BackupSpec struct {
	// Method depends on the kind: postgres has logical and physical, redis
	// resp and rdb, qdrant snapshot, s3 objects.
	Method string `yaml:"method"`
	// Schedule in cron syntax (5 fields, or @hourly, @daily, @every 15m).
	Schedule Cron `yaml:"schedule"`
}

// Retention is the grandfather-father-son policy applied per store and
// method. A backup is kept if any rule keeps it. The newest backup of a
// store and any backup whose retain_until lies in the future are never
// deleted.
type Retention struct {
	KeepLast    int `yaml:"keep_last"`
	KeepHourly  int `yaml:"keep_hourly"`
	KeepDaily   int `yaml:"keep_daily"`
	KeepWeekly  int `yaml:"keep_weekly"`
	KeepMonthly int `yaml:"keep_monthly"`
	KeepYearly  int `yaml:"keep_yearly"`
	// Schedule is when `linkdr serve` applies the policy, to every
	// repository that holds backups. Default @daily.
	Schedule Cron `yaml:"schedule"`
}

// Verify is when `linkdr serve` reads back the newest backup of every
// store in every repository holding it (checksums, decryption, the kind's
// own tool). It needs the identity file.
type Verify struct {
	// Schedule of the verification. Default @daily.
	Schedule Cron `yaml:"schedule"`
}

// StoreNames returns the store names in sorted order.
func (p *Plan) StoreNames() []string { return sortedKeys(p.Stores) }

// RepositoryNames returns the repository names in sorted order.
func (p *Plan) RepositoryNames() []string { return sortedKeys(p.Repositories) }

// StoreRPO is the RPO that applies to a store.
func (p *Plan) StoreRPO(s *Store) Duration {
	if s.RPO > 0 {
		return s.RPO
	}
	return p.Objectives.RPO
}

// Replica is the bucket (and prefix) an S3 store is replicated to.
type Replica struct {
	// URL: s3://bucket/prefix?region=…&endpoint=…&use_path_style=true.
	URL string `yaml:"url"`
}

// Methods are the store's backup methods, in plan order.
func (s *Store) Methods() []string {
	out := make([]string, 0, len(s.Backups))
	for _, b := range s.Backups {
		out = append(out, b.Method)
	}
	return out
}

// HasMethod tells whether the plan backs the store up by method.
func (s *Store) HasMethod(method string) bool { return slices.Contains(s.Methods(), method) }
