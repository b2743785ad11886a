package cli

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// qdrant seed NAME N | drop NAME | count NAME works on the test server's
// collections; count prints the number of points.
func cmdQdrant(ts *testscript.TestScript, c *qdranttest.Cluster, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: qdrant seed NAME N | drop NAME | count NAME")
	}
	switch args[0] {
	case "seed":
		n, err := strconv.Atoi(args[2])
		ts.Check(err)
		c.CreateCollection(args[1], 3, "Dot")
		pts := make([]qdranttest.Point, n)
		for i := range pts {
			pts[i] = qdranttest.Point{ID: uint64(i + 1), Vector: []float32{1, float32(i), 2}, Payload: map[string]any{"i": i}}
		}
		c.Upsert(args[1], pts)
	case "drop":
		c.DeleteCollection(args[1])
	case "count":
		fmt.Fprintf(ts.Stdout(), "%d\n", len(c.Points(args[1])))
	default:
		ts.Fatalf("qdrant: unknown subcommand %q", args[0])
	}
}

// s3 mkbucket VAR [lock] [dr] creates a bucket (with Object Lock) and
// sets $VAR to its name;
// s3 put VAR PREFIX N [TAG] writes PREFIX/obj-0000… (content tagged);
// s3 del VAR KEY deletes a key. "dr" as the last argument uses the DR
// region's server.
func cmdS3(t *testing.T, ts *testscript.TestScript, args []string) {
	info := testenv.S3(t)
	endpoint := info.Endpoint
	if len(args) > 0 && args[len(args)-1] == "dr" {
		endpoint, args = info.DREndpoint, args[:len(args)-1]
	}
	if len(args) < 2 {
		ts.Fatalf("usage: s3 mkbucket VAR | put VAR PREFIX N [TAG] | del VAR KEY  [dr]")
	}
	c := testenv.S3Client(t, endpoint)
	ctx := context.Background()
	switch args[0] {
	case "mkbucket":
		if len(args) > 2 && args[2] == "lock" {
			ts.Setenv(args[1], testenv.NewObjectLockBucket(t, endpoint))
			return
		}
		ts.Setenv(args[1], testenv.NewBucket(t, endpoint))
	case "put":
		n, err := strconv.Atoi(args[3])
		ts.Check(err)
		tag := ""
		if len(args) > 4 {
			tag = args[4]
		}
		for i := range n {
			body := fmt.Sprintf("object %d %s", i, tag)
			_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ts.Getenv(args[1])),
				Key: aws.String(fmt.Sprintf("%s/obj-%04d", args[2], i)), Body: bytes.NewReader([]byte(body))})
			ts.Check(err)
		}
	case "del":
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(ts.Getenv(args[1])), Key: aws.String(args[2])})
		ts.Check(err)
	default:
		ts.Fatalf("s3: unknown subcommand %q", args[0])
	}
}
