package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestBackendChoiceRefused: combinations that cannot work are refused
// before anything is opened, with a message saying what to do.
func TestBackendChoiceRefused(t *testing.T) {
	const sqliteRedis = "several nodes on one SQLite file is not supported: use --store postgres://"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{"RedisWithDefaultSQLite", []string{"--broker", "redis://127.0.0.1:6379/0"}, nil, "", sqliteRedis},
		{"RedissWithSQLiteFile", []string{"--store", "FILE", "--broker", "rediss://127.0.0.1:6379/0"}, nil, "", sqliteRedis},
		{"RedisWithSQLiteURL", []string{"--store", "sqlite://FILE", "--broker", "redis://127.0.0.1:6379/0"}, nil, "", sqliteRedis},
		{"RedisFromEnv", nil, map[string]string{"TANDEM_BROKER": "redis://127.0.0.1:6379/0"}, "", sqliteRedis},
		{"RedisFromConfigFile", nil, nil, "broker: redis://127.0.0.1:6379/0\n", sqliteRedis},
		{"UnknownBroker", []string{"--broker", "nats://127.0.0.1:4222"}, nil, "", "use memory (one node) or redis://"},
		{"UnknownStore", []string{"--store", "mysql://root:secret@127.0.0.1/db"}, nil, "", "unsupported store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "FILE", filepath.Join(dir, "x.db")))
			}
			if tc.yaml != "" {
				cfg := filepath.Join(dir, "tandem.yaml")
				if err := os.WriteFile(cfg, []byte(tc.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			getenv := func(k string) string { return tc.env[k] }
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			err := run(ctx, args, getenv, &bytes.Buffer{}, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "tandem.yaml" {
				t.Errorf("a refused configuration created files: %v", entries)
			}
		})
	}
}

// sharedRedisURL returns the machine's Redis (TANDEM_TEST_REDIS or
// 127.0.0.1:6379), skipping the test, or failing it when $CI is set, when
// it does not answer.
func sharedRedisURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("TANDEM_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatalf("TANDEM_TEST_REDIS: %v", err)
	}
	opts.MaxRetries = -1
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		msg := "Redis not reachable at " + url + " (" + err.Error() + `); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no (or set TANDEM_TEST_REDIS)`
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Logf("using Redis at %s", url)
	return url
}

// deleteRedisPrefix removes the keys a test created under prefix (never
// FLUSHALL: the server is shared).
func deleteRedisPrefix(t *testing.T, url, prefix string) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Error(err)
		return
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			t.Errorf("DEL %s: %v", iter.Val(), err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("SCAN %s*: %v", prefix, err)
	}
}

// TestPostgresRedisInProcess: `--store postgresql://…` (the alternative
// scheme) and `--broker redis://…` with a key prefix serve resources and
// channels, /readyz checks both, and the lag metrics are exported.
func TestPostgresRedisInProcess(t *testing.T) {
	dsn := freshPostgres(t)
	url := sharedRedisURL(t)
	prefix := "tandem-test-" + randomHex(6) + ":"
	t.Cleanup(func() { deleteRedisPrefix(t, url, prefix) })
	s := startServer(t, "--store", "postgresql://"+strings.TrimPrefix(dsn, "postgres://"), "--broker", url, "--redis-prefix", prefix)
	if !strings.Contains(s.Logs.String(), "postgres:postgresql://") || !strings.Contains(s.Logs.String(), "broker=redis:redis://") {
		t.Fatalf("the start-up log does not name the backends:\n%s", s.Logs.String())
	}
	if code, checks := ready(t, s); code != 200 || checks["store"] != "ok" || checks["broker"] != "ok" || len(checks) != 2 {
		t.Fatalf("/readyz = %d %v", code, checks)
	}
	s.mkcoll(t, "docs")
	w := s.dial(t)
	w.subscribe("collections/docs/resources", nil)
	w.subscribe("channels/lobby/messages", nil)
	r := s.put(t, "docs", "d1", `{"i":1}`, nil)
	m := s.publish(t, "lobby", `{"i":2}`)
	got := readEvents(t, w, map[string]int{"collections/docs/resources": 1, "channels/lobby/messages": 1})
	if ev := got["collections/docs/resources"][0]; ev.seq != r.Revision || ev.val != 1 {
		t.Errorf("resource event %+v, want revision %d", ev, r.Revision)
	}
	if ev := got["channels/lobby/messages"][0]; ev.seq != m.Offset || ev.val != 2 {
		t.Errorf("message event %+v, want offset %d", ev, m.Offset)
	}
	opts, _ := goredis.ParseURL(url)
	c := goredis.NewClient(opts)
	defer c.Close()
	if n, err := c.Exists(context.Background(), prefix+"{lobby}:meta").Result(); err != nil || n != 1 {
		t.Errorf("channel state not under --redis-prefix %q: EXISTS = %d, %v", prefix, n, err)
	}
	// The feed records its last broadcast revision after handing the event
	// to subscribers, so just after one arrives the lag gauge may still
	// read 1.
	want := map[string]float64{
		"tandem_broker_reconnects_total":           0,
		"tandem_broker_channels":                   3, // the channel, and the cluster bus's $ctl and $reply.<node>
		"tandem_broker_delivery_lag_seconds_count": 1,
		"tandem_change_feed_lag_revisions":         0,
		"tandem_store_revision":                    float64(r.Revision),
	}
	var bad []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		text := s.metrics(t)
		bad = bad[:0]
		for name, w := range want {
			if v := metricValue(t, text, name); v != w {
				bad = append(bad, fmt.Sprintf("%s = %v, want %v", name, v, w))
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestReadinessDefault: the single-node default reports both checks.
func TestReadinessDefault(t *testing.T) {
	s := startServer(t)
	if code, checks := ready(t, s); code != 200 || checks["store"] != "ok" || checks["broker"] != "ok" {
		t.Fatalf("/readyz = %d %v", code, checks)
	}
	text := s.metrics(t)
	if v := metricValue(t, text, "tandem_change_feed_lag_revisions"); v != 0 {
		t.Errorf("tandem_change_feed_lag_revisions = %v on an idle server", v)
	}
	if strings.Contains(text, "tandem_broker_reconnects_total") {
		t.Error("the memory broker exports Redis connection metrics")
	}
}
