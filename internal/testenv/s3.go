package testenv

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Info describes the two shared S3 gateways (versitygw with a posix backend and
// versioning): Endpoint plays the primary region, DREndpoint the disaster-recovery region.
// Both accept the same keys and region.
type S3Info struct {
	Endpoint   string // http://127.0.0.1:PORT
	DREndpoint string
	Region     string
	AccessKey  string
	SecretKey  string
}

// S3 returns the shared S3 gateways.
func S3(t testing.TB) S3Info {
	t.Helper()
	return S3Info{
		Endpoint:   Get(t, "LINKDR_TEST_S3_ENDPOINT"),
		DREndpoint: Get(t, "LINKDR_TEST_S3_DR_ENDPOINT"),
		Region:     Get(t, "LINKDR_TEST_S3_REGION"),
		AccessKey:  Get(t, "LINKDR_TEST_S3_ACCESS_KEY"),
		SecretKey:  Get(t, "LINKDR_TEST_S3_SECRET_KEY"),
	}
}

// S3Client returns an S3 client for endpoint (one of the gateways of [S3]) with the test keys
// and path-style addressing.
func S3Client(t testing.TB, endpoint string) *s3.Client {
	t.Helper()
	info := S3(t)
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       info.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(info.AccessKey, info.SecretKey, ""),
		UsePathStyle: true,
	})
}

// NewBucket creates a bucket with a unique name on endpoint and, when the test ends, deletes
// every object version and delete marker in it and the bucket itself.
func NewBucket(t testing.TB, endpoint string) string {
	t.Helper()
	return newBucket(t, endpoint, false)
}

// NewObjectLockBucket is [NewBucket] with S3 Object Lock enabled (and so versioning).
// Objects under COMPLIANCE retention or legal hold cannot be deleted: cleanup then leaves the
// bucket behind and logs it ("scripts/testenv.sh down" removes it).
func NewObjectLockBucket(t testing.TB, endpoint string) string {
	t.Helper()
	return newBucket(t, endpoint, true)
}

func newBucket(t testing.TB, endpoint string, lock bool) string {
	t.Helper()
	client := S3Client(t, endpoint)
	name := uniqueName(t, "", '-', 63)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := client.CreateBucket(ctx, in); err != nil {
		t.Fatalf("testenv: create bucket %s at %s: %v", name, endpoint, err)
	}
	t.Cleanup(func() {
		if err := removeBucket(client, name); err != nil {
			t.Logf("testenv: leaving bucket %s at %s: %v", name, endpoint, err)
		}
	})
	return name
}

func removeBucket(client *s3.Client, bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	del := func(key, version *string) {
		_, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: aws.String(bucket), Key: key, VersionId: version,
			BypassGovernanceRetention: aws.Bool(true),
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	versions := s3.NewListObjectVersionsPaginator(client, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for versions.HasMorePages() {
		page, err := versions.NextPage(ctx)
		if err != nil {
			errs = append(errs, err)
			break
		}
		for _, v := range page.Versions {
			del(v.Key, v.VersionId)
		}
		for _, m := range page.DeleteMarkers {
			del(m.Key, m.VersionId)
		}
	}
	objects := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx)
		if err != nil {
			errs = append(errs, err)
			break
		}
		for _, o := range page.Contents {
			del(o.Key, nil)
		}
	}
	uploads, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err == nil {
		for _, u := range uploads.Uploads {
			_, _ = client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId,
			})
		}
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		var nsb *types.NoSuchBucket
		if !errors.As(err, &nsb) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], errors.New("…"))
	}
	return errors.Join(errs...)
}

var awsEnvOnce sync.Once

// S3URL returns a gocloud-style URL for prefix in bucket at endpoint,
// s3://BUCKET/PREFIX?region=R&endpoint=E&use_path_style=true, and sets AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION for the process: they are the shared
// servers' credentials, the same for every test, so setting them once
// (rather than with t.Setenv) lets tests that use them run in parallel.
func S3URL(t testing.TB, endpoint, bucket, prefix string) string {
	t.Helper()
	info := S3(t)
	awsEnvOnce.Do(func() {
		os.Setenv("AWS_ACCESS_KEY_ID", info.AccessKey)
		os.Setenv("AWS_SECRET_ACCESS_KEY", info.SecretKey)
		os.Setenv("AWS_REGION", info.Region)
	})
	q := url.Values{}
	q.Set("region", info.Region)
	q.Set("endpoint", endpoint)
	q.Set("use_path_style", "true")
	u := url.URL{Scheme: "s3", Host: bucket, Path: "/" + strings.TrimPrefix(prefix, "/"), RawQuery: q.Encode()}
	if prefix == "" {
		u.Path = ""
	}
	return u.String()
}
