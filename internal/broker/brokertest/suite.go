package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

// Option configures Run.
type Option func(*config)

type config struct {
	nodes func(t *testing.T, n int) []broker.Broker
}

// WithNodes enables the multi-node subtests: nodes(t, n) returns n brokers
// sharing one backend (for Redis: n New calls with the same prefix), none
// of them running yet. Without it those subtests are skipped.
func WithNodes(nodes func(t *testing.T, n int) []broker.Broker) Option {
	return func(c *config) { c.nodes = nodes }
}

// Timing the suite relies on: brokers under test must sweep presence
// leases well within Wait (a sweep interval of at most a second).
const (
	leaseTTL   = 300 * time.Millisecond
	historyTTL = 300 * time.Millisecond
)

var big = broker.HistoryOptions{Size: 1000}

// Run is the conformance suite. newBroker returns a fresh broker (not yet
// running) with its own backend state; Run starts it with a Recorder,
// stops and closes it when the subtest ends. Subtests run in parallel.
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	single := []struct {
		name string
		run  func(t *testing.T, b broker.Broker, r *Recorder)
	}{
		{"PublishOffsets", testPublishOffsets},
		{"PositionNewChannel", testPositionNewChannel},
		{"PayloadVerbatim", testPayloadVerbatim},
		{"DeliverOnlySubscribed", testDeliverOnlySubscribed},
		{"ConcurrentPublishersInOrder", testConcurrentPublishers},
		{"HistorySinceLimit", testHistorySinceLimit},
		{"ErrGoneWrongEpoch", testErrGoneWrongEpoch},
		{"ErrGoneSizeBound", testErrGoneSizeBound},
		{"SizeZero", testSizeZero},
		{"TTLExpiry", testTTLExpiry},
		{"PresenceJoinLeave", testPresenceJoinLeave},
		{"PresenceLeaseExpiry", testPresenceLeaseExpiry},
		{"PresenceNotSubscribed", testPresenceNotSubscribed},
		{"PresencePages", testPresencePages},
	}
	for _, tc := range single {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t)
			r := Start(t, b)
			tc.run(t, b, r)
		})
	}
	multi := []struct {
		name string
		run  func(t *testing.T, bs []broker.Broker, rs []*Recorder)
	}{
		{"MultiNodePublish", testMultiNodePublish},
		{"MultiNodeConcurrentInOrder", testMultiNodeConcurrent},
		{"MultiNodePresence", testMultiNodePresence},
	}
	for _, tc := range multi {
		t.Run(tc.name, func(t *testing.T) {
			if cfg.nodes == nil {
				t.Skip("single-node broker: no shared backend")
			}
			t.Parallel()
			bs := cfg.nodes(t, 2)
			rs := make([]*Recorder, len(bs))
			for i, b := range bs {
				rs[i] = Start(t, b)
			}
			tc.run(t, bs, rs)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*Wait)
	t.Cleanup(cancel)
	return c
}

func data(i int) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)) }

func publish(t *testing.T, b broker.Broker, ch string, n int, opts broker.HistoryOptions) []broker.Message {
	t.Helper()
	out := make([]broker.Message, 0, n)
	for i := range n {
		m, err := b.Publish(ctx(t), ch, data(i), "pub", opts)
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		out = append(out, m)
	}
	return out
}

func subscribe(t *testing.T, b broker.Broker, ch string) {
	t.Helper()
	if err := b.Subscribe(ctx(t), ch); err != nil {
		t.Fatalf("Subscribe(%q): %v", ch, err)
	}
}

func position(t *testing.T, b broker.Broker, ch string) broker.Position {
	t.Helper()
	p, err := b.Position(ctx(t), ch)
	if err != nil {
		t.Fatalf("Position(%q): %v", ch, err)
	}
	return p
}

func offsets(ms []broker.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.Offset
	}
	return out
}

func span(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// history calls History and checks the error against want (nil: success).
func history(t *testing.T, b broker.Broker, ch string, since broker.Position, limit int, want error) ([]broker.Message, broker.Position) {
	t.Helper()
	ms, top, err := b.History(ctx(t), ch, since, limit)
	if want == nil && err != nil {
		t.Fatalf("History(%q, %+v, %d): %v", ch, since, limit, err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("History(%q, %+v, %d) = %v, %v; want %v", ch, since, limit, offsets(ms), err, want)
	}
	return ms, top
}
