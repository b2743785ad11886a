package cli

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/linkapp/linkdr/internal/store/redis/redistest"
	"github.com/linkapp/linkdr/internal/testenv"
)

// redisScripts starts the Redis servers the scripts use — $REDIS_SRC to
// back up, $REDIS_DST as a fresh target — and returns the commands that
// fill and query them.
func redisScripts(t *testing.T) (env map[string]string, cmds map[string]func(*testscript.TestScript, bool, []string)) {
	env = map[string]string{"REDIS_SRC": testenv.NewRedis(t), "REDIS_DST": testenv.NewRedis(t)}
	cmds = map[string]func(*testscript.TestScript, bool, []string){
		"redisfill": cmdRedisFill,
		"redis":     cmdRedis,
	}
	return env, cmds
}

// redisfill ADDR N writes N small keys of every type into database 0.
func cmdRedisFill(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: redisfill ADDR N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	c := goredis.NewClient(&goredis.Options{Addr: args[0], Protocol: 2, DisableIdentity: true})
	defer c.Close()
	each := n / 6
	_, err = redistest.Fill(context.Background(), c, redistest.Spec{Strings: n - 5*each, Lists: each, Hashes: each, Sets: each, ZSets: each, Streams: each, Seed: 1})
	ts.Check(err)
}

// redis ADDR COMMAND ARGS... prints the reply.
func cmdRedis(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: redis ADDR COMMAND [ARGS...]")
	}
	c := goredis.NewClient(&goredis.Options{Addr: args[0], Protocol: 2, DisableIdentity: true})
	defer c.Close()
	cmdArgs := make([]any, len(args)-1)
	for i, a := range args[1:] {
		cmdArgs[i] = a
	}
	v, err := c.Do(context.Background(), cmdArgs...).Result()
	if neg {
		if err == nil {
			ts.Fatalf("redis %v: succeeded unexpectedly", args[1:])
		}
		return
	}
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%v\n", v)
}
