package redis_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/brokertest"
	"github.com/tandemhq/tandem/internal/broker/redis"
)

var (
	reachOnce sync.Once
	reachErr  error
)

// redisURL returns the test Redis URL, skipping the test (or failing it
// under CI) when Redis cannot be reached.
func redisURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("TANDEM_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	reachOnce.Do(func() {
		opts, err := goredis.ParseURL(url)
		if err != nil {
			reachErr = err
			return
		}
		opts.MaxRetries = -1 // answer fast when nothing listens
		c := goredis.NewClient(opts)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		reachErr = c.Ping(ctx).Err()
	})
	if reachErr != nil {
		msg := "Redis not reachable at " + url + " (" + reachErr.Error() + "); start it with: " +
			`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no` +
			" (or set TANDEM_TEST_REDIS)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Logf("using Redis at %s", url)
	return url
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "tandemtest:" + hex.EncodeToString(b[:]) + ":"
}

// client returns a plain client for inspecting and damaging test keys.
func client(t testing.TB) *goredis.Client {
	t.Helper()
	opts, err := goredis.ParseURL(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// deleteKeys deletes the keys under prefix (never FLUSHALL: other tests
// share the server).
func deleteKeys(t testing.TB, c *goredis.Client, prefix string) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			t.Errorf("DEL %s: %v", iter.Val(), err)
		}
		n++
	}
	if err := iter.Err(); err != nil {
		t.Errorf("SCAN %s*: %v", prefix, err)
	}
	return n
}

func testOptions(prefix string) redis.Options {
	return redis.Options{
		Prefix:             prefix,
		SweepInterval:      25 * time.Millisecond,
		EpochCheckInterval: 100 * time.Millisecond,
		PingInterval:       time.Second,
		ClientName:         "tandemtest-" + strings.TrimSuffix(strings.TrimPrefix(prefix, "tandemtest:"), ":"),
	}
}

// newNodes returns n brokers sharing one fresh prefix, deleted when the
// test ends.
func newNodes(t *testing.T, n int, mod func(*redis.Options)) []*redis.Broker {
	t.Helper()
	url := redisURL(t)
	prefix := randomPrefix()
	c := client(t)
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	out := make([]*redis.Broker, n)
	for i := range out {
		opts := testOptions(prefix)
		if mod != nil {
			mod(&opts)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := redis.New(ctx, url, opts)
		cancel()
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		out[i] = b
	}
	return out
}

func TestMain(m *testing.M) {
	// After dial errors go-redis retries in a goroutine that notices a
	// closed pool only after its next one-second sleep.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

func TestConformance(t *testing.T) {
	brokertest.Run(t,
		func(t *testing.T) broker.Broker { return newNodes(t, 1, nil)[0] },
		brokertest.WithNodes(func(t *testing.T, n int) []broker.Broker {
			var out []broker.Broker
			for _, b := range newNodes(t, n, nil) {
				out = append(out, b)
			}
			return out
		}),
	)
}

func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := redis.New(ctx, "redis://127.0.0.1:1/0", redis.Options{})
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("New on a closed port: %v, want ErrUnavailable", err)
	}
	if _, err := redis.New(ctx, "http://nope", redis.Options{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("New with a bad URL: %v, want ErrUnavailable", err)
	}
}

func TestPingAndClose(t *testing.T) {
	b := newNodes(t, 1, nil)[0]
	ctx := context.Background()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_ = b.Close()
	_ = b.Close()
	if err := b.Ping(ctx); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if _, err := b.Publish(ctx, "ch", json.RawMessage(`1`), "", broker.HistoryOptions{}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

// TestKeysLostNewEpoch: losing the channel's keys (as FLUSHALL would, but
// only this test's keys) starts a new epoch: old cursors are gone and the
// subscribed node resets, found by the periodic epoch check.
func TestKeysLostNewEpoch(t *testing.T) {
	t.Parallel()
	var prefix string
	b := newNodes(t, 1, func(o *redis.Options) { prefix = o.Prefix })[0]
	r := brokertest.Start(t, b)
	ctx := context.Background()
	const ch = "flushed"
	if err := b.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	var last broker.Message
	for range 3 {
		m, err := b.Publish(ctx, ch, json.RawMessage(`1`), "", broker.HistoryOptions{Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	brokertest.Eventually(t, func() bool { return len(r.Messages(ch)) == 3 }, "messages not delivered")
	if n := deleteKeys(t, client(t), prefix); n == 0 {
		t.Fatal("no keys under the test prefix")
	}
	brokertest.Eventually(t, func() bool { return len(r.Resets(ch)) == 1 }, "no reset after the keys were lost: %v", r.Resets(ch))
	p, err := b.Position(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if p.Epoch == last.Epoch || p.Offset != 0 || r.Resets(ch)[0] != p.Epoch {
		t.Fatalf("after the loss: position %+v, reset to %v, old epoch %s", p, r.Resets(ch), last.Epoch)
	}
	_, _, err = b.History(ctx, ch, broker.Position{Epoch: last.Epoch, Offset: last.Offset}, 10)
	if !errors.Is(err, broker.ErrGone) {
		t.Fatalf("History with the old cursor: %v, want ErrGone", err)
	}
	m, err := b.Publish(ctx, ch, json.RawMessage(`2`), "", broker.HistoryOptions{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if m.Epoch != p.Epoch || m.Offset != 1 {
		t.Fatalf("first message of the new epoch: %+v", m)
	}
	brokertest.Eventually(t, func() bool { return len(r.Messages(ch)) == 4 }, "new epoch's message not delivered")
	if n := len(r.Resets(ch)); n != 1 {
		t.Errorf("%d resets, want 1", n)
	}
}

// TestKeysLostResetOnPublish: without the periodic check, the first
// message of the new epoch resets the channel before it is delivered.
func TestKeysLostResetOnPublish(t *testing.T) {
	t.Parallel()
	var prefix string
	nodes := newNodes(t, 2, func(o *redis.Options) { prefix = o.Prefix; o.EpochCheckInterval = time.Hour })
	sub, pub := nodes[0], nodes[1]
	r := brokertest.Start(t, sub)
	brokertest.Start(t, pub)
	ctx := context.Background()
	const ch = "flushed"
	if err := sub.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	old, err := pub.Publish(ctx, ch, json.RawMessage(`1`), "", broker.HistoryOptions{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() bool { return len(r.Messages(ch)) == 1 }, "message not delivered")
	deleteKeys(t, client(t), prefix)
	m, err := pub.Publish(ctx, ch, json.RawMessage(`2`), "", broker.HistoryOptions{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	if m.Epoch == old.Epoch || m.Offset != 1 {
		t.Fatalf("after the loss: %+v, old epoch %s", m, old.Epoch)
	}
	brokertest.Eventually(t, func() bool { return len(r.Messages(ch)) == 2 }, "new epoch's message not delivered")
	if got := r.Resets(ch); len(got) != 1 || got[0] != m.Epoch {
		t.Fatalf("resets %v, want [%s]", got, m.Epoch)
	}
}

// pubsubClientID returns the Redis client ID of the broker's PubSub
// connection (named name, with subscriptions).
func pubsubClientID(t *testing.T, c *goredis.Client, name string) string {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		f := map[string]string{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name && f["sub"] != "0" && f["sub"] != "" {
			ids = append(ids, f["id"])
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d pub/sub connections named %s, want 1", len(ids), name)
	}
	return ids[0]
}

// TestReconnectResets: when the PubSub connection drops, go-redis
// re-subscribes. A channel whose offset did not move meanwhile is not
// reset (nothing was missed); a channel that was published to while the
// connection was down is reset, with its epoch, exactly once. Delivery
// resumes on both without Subscribe.
func TestReconnectResets(t *testing.T) {
	t.Parallel()
	var name, prefix string
	b := newNodes(t, 1, func(o *redis.Options) { name, prefix = o.ClientName, o.Prefix })[0]
	r := brokertest.Start(t, b)
	ctx := context.Background()
	for _, ch := range []string{"one", "two"} {
		if err := b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Publish(ctx, "one", json.RawMessage(`1`), "", broker.HistoryOptions{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() bool { return len(r.Messages("one")) == 1 }, "message not delivered")
	c := client(t)

	// Nothing published while the connection is down: no reset.
	if err := c.Do(ctx, "CLIENT", "KILL", "ID", pubsubClientID(t, c, name)).Err(); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() bool { return b.Stats().Resubscribed == 2 }, "not resubscribed: %+v", b.Stats())
	if st := b.Stats(); st.Reconnects != 1 {
		t.Errorf("Stats after one reconnect = %+v", st)
	}
	if one, two := r.Resets("one"), r.Resets("two"); len(one)+len(two) != 0 {
		t.Fatalf("resets after a reconnect that missed nothing: one %v, two %v", one, two)
	}

	// The connection is killed and, in the same transaction, "one" moves
	// on (as a publish whose PUBLISH this node cannot receive would): only
	// "one" is reset.
	id := pubsubClientID(t, c, name)
	_, err = c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Do(ctx, "CLIENT", "KILL", "ID", id)
		p.HIncrBy(ctx, prefix+"{one}:meta", "o", 1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() bool { return len(r.Resets("one")) == 1 }, "no reset after a missed message: %v", r.Resets("one"))
	if got := r.Resets("one"); got[0] != m.Epoch {
		t.Errorf("reset epoch %s, want %s", got[0], m.Epoch)
	}
	brokertest.Eventually(t, func() bool { return b.Stats().Resubscribed == 4 }, "not resubscribed: %+v", b.Stats())
	for i, ch := range []string{"two", "one"} {
		pm, err := b.Publish(ctx, ch, json.RawMessage(`2`), "", broker.HistoryOptions{Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		brokertest.Eventually(t, func() bool {
			ms := r.Messages(ch)
			return len(ms) > 0 && ms[len(ms)-1].Offset == pm.Offset
		}, "no delivery on %s after the reconnect", ch)
		if pm.Offset != int64(1+2*i) {
			t.Errorf("%s: offset %d after the reconnect", ch, pm.Offset)
		}
	}
	if one, two := r.Resets("one"), r.Resets("two"); len(one) != 1 || len(two) != 0 {
		t.Fatalf("resets at the end: one %v, two %v; want one and none", one, two)
	}
}

// TestUnsubscribeResubscribe: interest changes quickly without losing the
// guarantee that a confirmed subscription sees every later publish.
func TestUnsubscribeResubscribe(t *testing.T) {
	t.Parallel()
	b := newNodes(t, 1, nil)[0]
	r := brokertest.Start(t, b)
	ctx := context.Background()
	const ch = "flap"
	for i := range 20 {
		if err := b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		m, err := b.Publish(ctx, ch, json.RawMessage(`1`), "", broker.HistoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		brokertest.Eventually(t, func() bool {
			ms := r.Messages(ch)
			return len(ms) == i+1 && ms[i].Offset == m.Offset
		}, "round %d: delivered %d", i, len(r.Messages(ch)))
		if err := b.Unsubscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		r.Forget(ch)
	}
}

func BenchmarkPublish(b *testing.B) {
	url := redisURL(b)
	prefix := randomPrefix()
	c := client(b)
	b.Cleanup(func() { deleteKeys(b, c, prefix) })
	br, err := redis.New(context.Background(), url, testOptions(prefix))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = br.Run(ctx, nop{}) }()
	b.Cleanup(func() { cancel(); <-done; _ = br.Close() })
	if err := br.Subscribe(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	data := json.RawMessage(`{"text":"hello, world","n":12345}`)
	opts := broker.HistoryOptions{Size: 100, TTL: time.Minute}
	b.ReportAllocs()
	b.SetParallelism(4) // a server publishes for many clients at once
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Publish(ctx, "bench", data, "user", opts); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type nop struct{}

func (nop) HandleMessage(broker.Message)        {}
func (nop) HandlePresence(broker.PresenceEvent) {}
func (nop) HandleReset(string, string)          {}

// TestPresencePageIndexRepair: presence written without the page index (by
// a version before it) or with a stale index is paged correctly: the index
// is rebuilt from the presence hash.
func TestPresencePageIndexRepair(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	prefix := randomPrefix()
	c := client(t)
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := redis.New(ctx, url, testOptions(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	for _, id := range []string{"carol", "alice", "bob"} {
		if err := b.Join(ctx, "room", broker.Member{ID: id, ConnID: "c-" + id}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	idx := prefix + "{room}:pidx"
	check := func(what string) {
		t.Helper()
		var got []string
		after := ""
		for {
			ms, more, err := b.PresencePage(ctx, "room", after, 2)
			if err != nil {
				t.Fatalf("%s: PresencePage: %v", what, err)
			}
			for _, m := range ms {
				got = append(got, m.ID)
			}
			if !more {
				break
			}
			after = ms[len(ms)-1].ID
		}
		if strings.Join(got, ",") != "alice,bob,carol" {
			t.Errorf("%s: pages list %v, want alice, bob, carol", what, got)
		}
	}
	check("indexed")
	if err := c.Del(ctx, idx).Err(); err != nil {
		t.Fatal(err)
	}
	check("index deleted")
	if err := c.ZAdd(ctx, idx, goredis.Z{Member: "zed\x00\x01c-zed"}).Err(); err != nil {
		t.Fatal(err)
	}
	check("stale entry")
	if n, err := c.ZCard(ctx, idx).Result(); err != nil || n != 3 {
		t.Errorf("index holds %d entries (%v), want 3", n, err)
	}
}
