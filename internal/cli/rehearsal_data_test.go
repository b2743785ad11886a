package cli

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/store/qdrant/qdranttest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// The rehearsal's Redis, Qdrant and S3 data: what the Link app keeps
// besides PostgreSQL, seeded in the primary region and compared with what
// the runbook restored into the DR region.

// seedSessions writes n keys of every type into the cluster at addrs
// (sessions with TTLs, carts, feeds, online sets, leaderboards) and
// returns their names.
func seedSessions(t *testing.T, addrs []string, n int) []string {
	t.Helper()
	ctx := context.Background()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	var keys []string
	for i := range n {
		tag := fmt.Sprintf("{u%d}", i)
		p := c.Pipeline()
		p.Set(ctx, "session:"+tag, fmt.Sprintf("token-%d", i*7919), time.Duration(1+i%24)*time.Hour)
		p.HSet(ctx, "cart:"+tag, "items", i%5, "total", fmt.Sprintf("%d.%02d", i, i%100))
		p.RPush(ctx, "feed:"+tag, "post:1", fmt.Sprintf("post:%d", i), "post:9")
		p.SAdd(ctx, "online:"+tag, "web", "ios", fmt.Sprintf("dev%d", i%3))
		p.ZAdd(ctx, "score:"+tag, goredis.Z{Score: float64(i), Member: "likes"}, goredis.Z{Score: float64(i % 7), Member: "matches"})
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, "session:"+tag, "cart:"+tag, "feed:"+tag, "online:"+tag, "score:"+tag)
	}
	return keys
}

// redisKeyState is one key as a client sees it: type, value and absolute
// expiry (to the millisecond).
func redisKeyState(ctx context.Context, c *goredis.ClusterClient, key string) (string, error) {
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		return "", err
	}
	var v any
	switch typ {
	case "string":
		v, err = c.Get(ctx, key).Result()
	case "hash":
		v, err = c.HGetAll(ctx, key).Result()
	case "list":
		v, err = c.LRange(ctx, key, 0, -1).Result()
	case "set":
		var m []string
		m, err = c.SMembers(ctx, key).Result()
		sort.Strings(m)
		v = m
	case "zset":
		v, err = c.ZRangeWithScores(ctx, key, 0, -1).Result()
	case "none":
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	exp, err := c.Do(ctx, "PEXPIRETIME", key).Int64()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %v expires %d", typ, v, exp), nil
}

// assertSessionsRestored compares every key on the primary cluster with
// the DR cluster, and the DR's key count with the primary's.
func assertSessionsRestored(t *testing.T, primary, dr []string, keys []string) {
	t.Helper()
	ctx := context.Background()
	p := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: primary})
	defer p.Close()
	d := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: dr})
	defer d.Close()
	for _, k := range keys {
		want, err := redisKeyState(ctx, p, k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := redisKeyState(ctx, d, k)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("DR Redis key %s: %s, primary %s", k, got, want)
		}
	}
	if np, nd := clusterKeys(t, p), clusterKeys(t, d); np != nd || nd != int64(len(keys)) {
		t.Fatalf("keys: primary %d, DR %d, seeded %d", np, nd, len(keys))
	}
}

func clusterKeys(t *testing.T, c *goredis.ClusterClient) int64 {
	t.Helper()
	var n atomic.Int64
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *goredis.Client) error {
		k, err := m.DBSize(ctx).Result()
		n.Add(k)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n.Load()
}

// seedVectors makes the Link app's two collections with points.
func seedVectors(c *qdranttest.Cluster) {
	for name, dim := range map[string]int{"posts": 8, "profiles": 4} {
		c.CreateCollection(name, dim, "Cosine")
		pts := make([]qdranttest.Point, 300)
		for i := range pts {
			vec := make([]float32, dim)
			for j := range vec {
				vec[j] = float32((i+1)*(j+3)%97) / 97
			}
			pts[i] = qdranttest.Point{ID: uint64(i + 1), Vector: vec, Payload: map[string]any{"user": fmt.Sprint(i % 50), "lang": "en"}}
		}
		c.Upsert(name, pts)
	}
}

func assertVectorsRestored(t *testing.T, primary, dr *qdranttest.Cluster) {
	t.Helper()
	for _, name := range []string{"posts", "profiles"} {
		p, d := primary.Points(name), dr.Points(name)
		if len(d) != 300 || !reflect.DeepEqual(p, d) {
			t.Fatalf("DR Qdrant collection %s: %d points, primary %d (equal: %v)", name, len(d), len(p), reflect.DeepEqual(p, d))
		}
	}
}

// seedMedia uploads user media under uploads/ in bucket at endpoint.
func seedMedia(t *testing.T, endpoint, bucket string, n int) {
	t.Helper()
	c := testenv.S3Client(t, endpoint)
	for i := range n {
		body := bytes.Repeat([]byte(fmt.Sprintf("photo %d ", i)), 100+i*13)
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("uploads/u%d/photo-%d.jpg", i%10, i)),
			Body: bytes.NewReader(body), ContentType: aws.String("image/jpeg"),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// listETags lists key → ETag under prefix.
func listETags(t *testing.T, endpoint, bucket, prefix string) map[string]string {
	t.Helper()
	c := testenv.S3Client(t, endpoint)
	out := map[string]string{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out[aws.ToString(o.Key)[len(prefix):]] = aws.ToString(o.ETag)
		}
	}
	return out
}
