package repo

import (
	"testing"

	"github.com/linkapp/linkdr/internal/testenv"
)

// TestS3 runs the storage suite against the real S3 server from testenv
// (versitygw), including conditional writes for leases.
func TestS3(t *testing.T) {
	s3 := testenv.S3(t)
	bucket := testenv.NewBucket(t, s3.Endpoint)
	suite(t, testenv.S3URL(t, s3.Endpoint, bucket, "linkdr/repo"))
}
