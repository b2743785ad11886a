package redis

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/linkapp/linkdr/internal/plan"
	"github.com/linkapp/linkdr/internal/store"
	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

type discardSink struct{}

func (discardSink) CreateArtifact(ctx context.Context, name, mt string, meta map[string]string) (io.WriteCloser, error) {
	return nopWC{io.Discard}, nil
}

type nopWC struct{ io.Writer }

func (nopWC) Close() error { return nil }

func TestProfBackup(t *testing.T) {
	if os.Getenv("PROF") == "" {
		t.Skip()
	}
	src := testenv.NewRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: src, Protocol: 2})
	redistest.Fill(context.Background(), c, redistest.Spec{Strings: 50000, Lists: 10000, Hashes: 10000, Sets: 10000, ZSets: 10000, Streams: 10000, Seed: 1, TTLFraction: 0.3, MinTTL: time.Hour, MaxTTL: 2 * time.Hour})
	s, _ := New(&plan.Store{Name: "x", URL: plan.Secret("redis://" + src)}, store.Env{})
	for range 2 {
		c.ConfigResetStat(context.Background())
		t0 := time.Now()
		_, err := s.Backup(context.Background(), store.BackupRequest{Method: "resp", Sink: discardSink{}, Log: slog.Default()})
		t.Log(time.Since(t0), err)
		st, _ := c.Info(context.Background(), "commandstats", "cpu").Result()
		t.Log(st)
	}
}
