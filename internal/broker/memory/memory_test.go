package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/brokertest"
	"github.com/tandemhq/tandem/internal/broker/memory"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newBroker(t *testing.T) broker.Broker {
	return memory.New(memory.Options{SweepInterval: 20 * time.Millisecond})
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, newBroker)
}

// TestNewProcessNewEpoch: two brokers are two processes; a cursor of one
// is gone in the other.
func TestNewProcessNewEpoch(t *testing.T) {
	ctx := context.Background()
	a, b := memory.New(memory.Options{}), memory.New(memory.Options{})
	m, err := a.Publish(ctx, "ch", json.RawMessage(`1`), "", broker.HistoryOptions{Size: 10})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Position(ctx, "ch")
	if err != nil {
		t.Fatal(err)
	}
	if p.Epoch == m.Epoch || p.Offset != 0 {
		t.Fatalf("second process position %+v, first epoch %s", p, m.Epoch)
	}
	if _, _, err := b.History(ctx, "ch", broker.Position{Epoch: m.Epoch, Offset: 1}, 10); err != broker.ErrGone {
		t.Fatalf("History with another process's cursor: %v, want ErrGone", err)
	}
}

// TestPublishBeforeRun: messages published to a subscribed channel before
// Run starts are delivered once it does.
func TestPublishBeforeRun(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Options{})
	if err := b.Subscribe(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "early", json.RawMessage(`1`), "", broker.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	r := brokertest.Start(t, b)
	brokertest.Eventually(t, func() bool { return len(r.Messages("early")) == 1 }, "early message not delivered")
}

// reentrant publishes from inside HandleMessage, which must not deadlock.
type reentrant struct {
	*brokertest.Recorder
	b *memory.Broker
}

func (h reentrant) HandleMessage(m broker.Message) {
	h.Recorder.HandleMessage(m)
	if m.Offset < 3 {
		_, _ = h.b.Publish(context.Background(), m.Channel, m.Data, "", broker.HistoryOptions{})
	}
}

func TestHandlerMayPublish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b := memory.New(memory.Options{})
	h := reentrant{Recorder: brokertest.NewRecorder(), b: b}
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx, h) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := b.Subscribe(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "echo", json.RawMessage(`1`), "", broker.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	brokertest.Eventually(t, func() bool { return len(h.Messages("echo")) == 3 }, "got %d messages", len(h.Messages("echo")))
	if p := h.Problems(); len(p) > 0 {
		t.Fatal(p)
	}
}

// TestIdleChannelForgotten: an idle channel without history is forgotten
// and its next use starts a new epoch.
func TestIdleChannelForgotten(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Options{SweepInterval: 10 * time.Millisecond, IdleTTL: 30 * time.Millisecond})
	brokertest.Start(t, b)
	p1, _ := b.Position(ctx, "idle")
	if err := b.Subscribe(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	k1, _ := b.Position(ctx, "kept")
	time.Sleep(100 * time.Millisecond)
	if p2, _ := b.Position(ctx, "idle"); p2.Epoch == p1.Epoch {
		t.Errorf("idle channel kept its epoch %s", p1.Epoch)
	}
	if k2, _ := b.Position(ctx, "kept"); k2 != k1 {
		t.Errorf("subscribed channel changed position %+v → %+v", k1, k2)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	b := memory.New(memory.Options{})
	_ = b.Close()
	if _, err := b.Publish(ctx, "ch", json.RawMessage(`1`), "", broker.HistoryOptions{}); !errorsIs(err, broker.ErrUnavailable) {
		t.Errorf("Publish after Close: %v", err)
	}
	if err := b.Ping(ctx); !errorsIs(err, broker.ErrUnavailable) {
		t.Errorf("Ping after Close: %v", err)
	}
}

func BenchmarkPublish(b *testing.B) {
	br := memory.New(memory.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = br.Run(ctx, nop{}) }()
	b.Cleanup(func() { cancel(); <-done })
	_ = br.Subscribe(ctx, "bench")
	data := json.RawMessage(`{"text":"hello, world","n":12345}`)
	opts := broker.HistoryOptions{Size: 100, TTL: time.Minute}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := br.Publish(ctx, "bench", data, "user", opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

type nop struct{}

func (nop) HandleMessage(broker.Message)        {}
func (nop) HandlePresence(broker.PresenceEvent) {}
func (nop) HandleReset(string, string)          {}
