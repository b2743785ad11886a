package s3

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/linkapp/linkdr/internal/ops"
	_ "github.com/linkapp/linkdr/internal/store/s3bucket"
	"github.com/linkapp/linkdr/internal/testenv"
)

// objects is the bucket size: LINKDR_BENCH_S3_OBJECTS, default 10000.
func objects() int {
	if n, err := strconv.Atoi(os.Getenv("LINKDR_BENCH_S3_OBJECTS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

func put(b *testing.B, c *s3.Client, bucket string, keys []string, tag string) {
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for i, k := range keys {
		g.Go(func() error {
			body := bytes.Repeat([]byte(fmt.Sprintf("%s %d ", tag, i)), 200+i%300) // 2–8 KiB
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(body)})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// rclone syncs the bucket prefix into dir, comparing by checksum as
// linkdr compares by ETag, with the same parallelism.
func rclone(b *testing.B, info testenv.S3Info, bucket, dir string) time.Duration {
	bin, err := exec.LookPath("rclone")
	if err != nil {
		b.Fatalf("rclone not found: scripts/bench-s3.sh installs it")
	}
	cmd := exec.Command(bin, "sync", "src:"+bucket+"/data", dir, "--checksum", "--transfers", "16", "--checkers", "16", "--fast-list")
	var env []string
	for _, e := range os.Environ() {
		// rclone cannot apply a CA bundle to its own transport and fails
		// outright; the test servers speak plain HTTP anyway.
		if !strings.HasPrefix(e, "AWS_CA_BUNDLE=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env,
		"RCLONE_CONFIG_SRC_TYPE=s3", "RCLONE_CONFIG_SRC_PROVIDER=Other", "RCLONE_CONFIG_SRC_ENV_AUTH=false",
		"RCLONE_CONFIG_SRC_ACCESS_KEY_ID="+info.AccessKey, "RCLONE_CONFIG_SRC_SECRET_ACCESS_KEY="+info.SecretKey,
		"RCLONE_CONFIG_SRC_ENDPOINT="+info.Endpoint, "RCLONE_CONFIG_SRC_REGION="+info.Region, "RCLONE_CONFIG_SRC_FORCE_PATH_STYLE=true")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("rclone: %v\n%s", err, out)
	}
	return time.Since(start)
}

// BenchmarkIncremental: a bucket of N small objects; full backup, then 1%
// changed and an incremental one; rclone sync full and incremental on the
// same bucket in the same run. Reports objects/s (objects in the bucket
// per second of wall time) and linkdr's time as a ratio of rclone's.
func BenchmarkIncremental(b *testing.B) {
	ctx := context.Background()
	n := objects()
	info := testenv.S3(b)
	c := testenv.S3Client(b, info.Endpoint)
	bucket := testenv.NewBucket(b, info.Endpoint)
	url := testenv.S3URL(b, info.Endpoint, bucket, "data")
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("data/u/%04d/%06d.bin", i%500, i)
	}
	put(b, c, bucket, keys, "v1")
	b.Cleanup(func() { deleteAll(c, bucket, keys) }) // before testenv's own, sequential cleanup
	r := ops.TestRunner(b, "", fmt.Sprintf("  media:\n    kind: s3\n    url: %q\n    backups: [{method: objects}]\n", url))
	dir := filepath.Join(b.TempDir(), "rclone")

	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := r.Backup(ctx, "media", ""); err != nil {
			b.Fatal(err)
		}
		fullL := time.Since(start)
		fullR := rclone(b, info, bucket, dir)

		b.StopTimer()
		put(b, c, bucket, keys[:n/100], "v2")
		b.StartTimer()

		start = time.Now()
		m, err := r.Backup(ctx, "media", "")
		if err != nil {
			b.Fatal(err)
		}
		incL := time.Since(start)
		incR := rclone(b, info, bucket, dir)

		ops := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
		b.ReportMetric(ops(fullL), "full-objects/s")
		b.ReportMetric(ops(incL), "incr-objects/s")
		b.ReportMetric(fullL.Seconds()/fullR.Seconds(), "full-time/rclone")
		b.ReportMetric(incL.Seconds()/incR.Seconds(), "incr-time/rclone")
		fmt.Printf("\n| %d objects, 1%% changed | linkdr | rclone sync --checksum | linkdr/rclone time |\n|---|---|---|---|\n", n)
		fmt.Printf("| full | %.2fs (%.0f objects/s) | %.2fs (%.0f objects/s) | %.2f |\n", fullL.Seconds(), ops(fullL), fullR.Seconds(), ops(fullR), fullL.Seconds()/fullR.Seconds())
		fmt.Printf("| incremental | %.2fs (%.0f objects/s) | %.2fs (%.0f objects/s) | %.2f |\n", incL.Seconds(), ops(incL), incR.Seconds(), ops(incR), incL.Seconds()/incR.Seconds())
		fmt.Printf("\nincremental backup %s stored %d bytes for %d changed objects\n", m.ID, m.Pool[len(m.Pool)-1].StoredSize, n/100)
		// Next iteration (if any) starts from a changed bucket again.
		b.StopTimer()
		put(b, c, bucket, keys[:n/100], fmt.Sprintf("v%d", time.Now().UnixNano()))
		b.StartTimer()
	}
}

// deleteAll removes the objects in parallel: the shared server should not
// keep a benchmark's bucket around.
func deleteAll(c *s3.Client, bucket string, keys []string) {
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error {
			c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
			return nil
		})
	}
	g.Wait()
}
