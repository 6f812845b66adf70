package redis_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/brokertest"
	"github.com/tandemhq/tandem/internal/broker/redis"
	"github.com/tandemhq/tandem/internal/broker/redis/redistest"
)

// TestServerRestart stops a private Redis (SIGKILL, nothing persisted)
// and starts an empty one on the same port. While it is down the broker
// reports ErrUnavailable; once it is back the node's subscriptions are
// still in place (no Subscribe again), every subscribed channel was reset
// to its new epoch instead of silently skipping what was lost, old cursors
// are gone, and Stats counts the reconnect. The reset carries the new
// epoch and comes once, so a subscriber that starts again right after it
// is not reset a second time.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts := testOptions(randomPrefix())
	opts.PingInterval = 200 * time.Millisecond
	ctx := context.Background()
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	b, err := redis.New(nctx, srv.URL(), opts)
	cancel()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := brokertest.Start(t, b)
	channels := []string{"room", "quiet"}
	for _, ch := range channels {
		if err := b.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	var old broker.Message
	for range 3 {
		if old, err = b.Publish(ctx, "room", json.RawMessage(`1`), "", broker.HistoryOptions{Size: 10}); err != nil {
			t.Fatal(err)
		}
	}
	brokertest.Eventually(t, func() bool { return len(r.Messages("room")) == 3 }, "messages not delivered")
	oldEpoch := map[string]string{}
	for _, ch := range channels {
		p, err := b.Position(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		oldEpoch[ch] = p.Epoch
	}
	if st := b.Stats(); st.Reconnects != 0 || st.Resubscribed != 0 || st.Channels != 2 {
		t.Fatalf("Stats before the restart = %+v", st)
	}

	srv.Kill()
	down, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Ping(down); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := b.Publish(down, "room", json.RawMessage(`2`), "", broker.HistoryOptions{Size: 10}); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("Publish with Redis down: %v, want ErrUnavailable", err)
	}

	srv.Restart()
	// go-redis remembers a failed dial and answers with it until its
	// background redial succeeds (about a second), so Ping may fail for
	// that long after Redis is back.
	var pingErr error
	brokertest.EventuallyWithin(t, 10*time.Second, func() bool { pingErr = b.Ping(ctx); return pingErr == nil },
		"Ping after the restart: %v", pingErr)
	// Each channel is reset once, to its new epoch.
	for _, ch := range channels {
		brokertest.EventuallyWithin(t, 20*time.Second, func() bool { return len(r.Resets(ch)) > 0 },
			"channel %s: no reset after the restart", ch)
		if rs := r.Resets(ch); rs[0] == oldEpoch[ch] {
			t.Fatalf("channel %s: reset to the old epoch %s after Redis lost its keys", ch, rs[0])
		}
	}
	p, err := b.Position(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if rs := r.Resets("room"); rs[len(rs)-1] != p.Epoch || p.Offset != 0 {
		t.Fatalf("position after the restart %+v, last reset to %s", p, rs[len(rs)-1])
	}
	if _, _, err := b.History(ctx, "room", broker.Position{Epoch: old.Epoch, Offset: old.Offset}, 10); !errors.Is(err, broker.ErrGone) {
		t.Fatalf("History with a cursor from before the restart: %v, want ErrGone", err)
	}
	// The resets may come from the epoch check before the delivery
	// goroutine has handled every re-subscription confirmation (each one
	// reads the channel's position, retrying while go-redis backs off), so
	// the counters catch up a little later.
	var st redis.Stats
	brokertest.EventuallyWithin(t, 20*time.Second, func() bool {
		st = b.Stats()
		return st.Reconnects >= 1 && st.Resubscribed >= 2 && st.Channels == 2
	}, "Stats after the restart = %+v, want a reconnect and both channels resubscribed", &st)

	// Let several epoch checks run: they must not reset again, or a client
	// that resubscribed after the first reset would be reset for nothing.
	time.Sleep(5 * opts.EpochCheckInterval)
	for _, ch := range channels {
		if rs := r.Resets(ch); len(rs) != 1 {
			t.Fatalf("channel %s: resets %v, want exactly one", ch, rs)
		}
	}
	// The subscriptions survived: new messages arrive without Subscribe.
	for _, ch := range channels {
		m, err := b.Publish(ctx, ch, json.RawMessage(`3`), "", broker.HistoryOptions{Size: 10})
		if err != nil {
			t.Fatal(err)
		}
		if rs := r.Resets(ch); m.Epoch != rs[0] || m.Offset != 1 {
			t.Fatalf("first message after the restart on %s: %+v (epoch %s)", ch, m, p.Epoch)
		}
		brokertest.Eventually(t, func() bool {
			ms := r.Messages(ch)
			return len(ms) > 0 && ms[len(ms)-1].Offset == 1 && ms[len(ms)-1].Epoch == m.Epoch
		}, "channel %s: no delivery after the restart", ch)
		if rs := r.Resets(ch); len(rs) != 1 {
			t.Fatalf("channel %s: resets %v after the first message of the new epoch, want one", ch, rs)
		}
	}
}
