package repo

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
)

// ObjectLock is S3 Object Lock retention applied to every object a backup
// writes (artifacts, pool artifacts, plain artifacts, the manifest).
// Leases and linkdr-repo.json are not locked: leases are rewritten every
// few seconds and must be deletable, and a lock on them protects nothing.
type ObjectLock struct {
	Mode string // "governance" or "compliance"
	Days int
}

// ErrObjectLockUnsupported: Object Lock was asked for on storage that is
// not S3.
var ErrObjectLockUnsupported = errors.New("object lock needs an s3:// repository")

// SetObjectLock makes every backup written from now on lock its objects.
// The bucket must have Object Lock enabled; S3 rejects the writes
// otherwise, so a misconfiguration fails the first backup loudly.
func (r *Repo) SetObjectLock(l *ObjectLock) error {
	if l == nil {
		r.lock = nil
		return nil
	}
	if !r.loc.s3 {
		return fmt.Errorf("repository %s: %w", redact(r.url), ErrObjectLockUnsupported)
	}
	if l.Mode != "governance" && l.Mode != "compliance" {
		return fmt.Errorf("object lock mode %q: want governance or compliance", l.Mode)
	}
	if l.Days < 1 {
		return fmt.Errorf("object lock days %d: want at least 1", l.Days)
	}
	r.lock = l
	return nil
}

// ObjectLock returns the repository's Object Lock settings, or nil.
func (r *Repo) ObjectLock() *ObjectLock { return r.lock }

// lockFunc returns the BeforeWrite hook that sets the retention on an S3
// upload (gocloud's escape hatch to aws-sdk-go-v2), or nil.
func (r *Repo) lockFunc(until *time.Time) func(as func(any) bool) error {
	if r.lock == nil || until == nil {
		return nil
	}
	mode := tmtypes.ObjectLockModeGovernance
	if r.lock.Mode == "compliance" {
		mode = tmtypes.ObjectLockModeCompliance
	}
	u := *until
	return func(as func(any) bool) error {
		var in *transfermanager.UploadObjectInput
		if !as(&in) {
			return fmt.Errorf("object lock: %w", ErrObjectLockUnsupported)
		}
		in.ObjectLockMode = mode
		in.ObjectLockRetainUntilDate = &u
		// S3 demands an integrity checksum on uploads that set a lock.
		in.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmCrc32
		return nil
	}
}

// locked reports whether a backup's objects are still under Object Lock
// (or any other hold recorded as retain_until) at now.
func locked(m *Manifest, now time.Time) bool {
	return m.RetainUntil != nil && m.RetainUntil.After(now)
}

// ErrRetained: a backup cannot be deleted yet (retain_until, Object Lock).
var ErrRetained = errors.New("backup is retained")
