package cluster_test

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/redis"
	"github.com/tandemhq/tandem/internal/broker/redis/redistest"
	"github.com/tandemhq/tandem/internal/cluster"
)

// nullHandler is the node's channel engine in these tests: the bus must
// keep its own channels from it.
type nullHandler struct{ leaked atomic.Int64 }

func (h *nullHandler) HandleMessage(m broker.Message) {
	if strings.HasPrefix(m.Channel, "$") {
		h.leaked.Add(1)
	}
}
func (h *nullHandler) HandlePresence(e broker.PresenceEvent) {
	if strings.HasPrefix(e.Channel, "$") {
		h.leaked.Add(1)
	}
}
func (h *nullHandler) HandleReset(string, string) {}

type node struct {
	bus     *cluster.Bus
	engine  *nullHandler
	stop    func() // ends Run (the node leaves the list)
	kill    func() // closes the broker without leaving
	handled atomic.Int64
}

// startNode runs a bus for name on its own Redis broker connection.
func startNode(t *testing.T, url, prefix, name string, lease time.Duration) *node {
	t.Helper()
	br, err := redis.New(t.Context(), url, redis.Options{Prefix: prefix, SweepInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{bus: cluster.New(br, name, lease, nil), engine: &nullHandler{}}
	bctx, stopBroker := context.WithCancel(context.Background())
	brDone := make(chan struct{})
	go func() { defer close(brDone); _ = br.Run(bctx, n.bus.Handler(n.engine)) }()
	rctx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = n.bus.Run(rctx, func(_ context.Context, cmd []byte) []byte {
			n.handled.Add(1)
			return []byte(`{"node":"` + name + `","cmd":` + string(cmd) + `}`)
		})
	}()
	n.stop = func() { stopRun(); <-runDone }
	n.kill = func() { stopBroker(); <-brDone; _ = br.Close() }
	t.Cleanup(func() { n.stop(); n.kill() })
	return n
}

// answersFrom broadcasts until want nodes answer and none is missing (a
// node is listed once its first lease is written, and unlisted once it
// left or its lease expired), or 10 s pass.
func answersFrom(t *testing.T, b *cluster.Bus, want int) ([]string, []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		answers, unreachable, err := b.Broadcast(ctx, []byte(`{"op":"ping"}`))
		cancel()
		var got []string
		for _, a := range answers {
			got = append(got, string(a))
		}
		sort.Strings(got)
		if err == nil && len(got) == want && len(unreachable) == 0 || time.Now().After(deadline) {
			return got, unreachable
		}
		time.Sleep(20 * time.Millisecond) // polling the live list; bounded by the deadline
	}
}

func TestBroadcastReachesEveryNode(t *testing.T) {
	rs := redistest.Start(t)
	prefix := "cluster-test:"
	a := startNode(t, rs.URL(), prefix, "a", time.Second)
	b := startNode(t, rs.URL(), prefix, "b", time.Second)
	c := startNode(t, rs.URL(), prefix, "c", time.Second)
	got, unreachable := answersFrom(t, a.bus, 3)
	want := []string{`{"node":"a","cmd":{"op":"ping"}}`, `{"node":"b","cmd":{"op":"ping"}}`, `{"node":"c","cmd":{"op":"ping"}}`}
	if !slices.Equal(got, want) || len(unreachable) != 0 {
		t.Fatalf("answers %v, unreachable %v", got, unreachable)
	}
	// Any node can ask.
	if got, _ := answersFrom(t, c.bus, 3); len(got) != 3 {
		t.Fatalf("from c: %v", got)
	}

	// A node that stops leaves the list: no wait for it.
	b.stop()
	start := time.Now()
	got, unreachable = answersFrom(t, a.bus, 2)
	if len(got) != 2 || len(unreachable) != 0 {
		t.Fatalf("after b stopped: %v, unreachable %v", got, unreachable)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("broadcast took %v with a node gone", took)
	}

	// A node that dies without leaving is waited for until ctx ends and
	// named unreachable, until its lease expires.
	c.kill()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	answers, unreachable, err := a.bus.Broadcast(ctx, []byte(`{}`))
	cancel()
	if err != nil || len(answers) != 1 || !slices.Equal(unreachable, []string{"c"}) {
		t.Fatalf("with c dead: %d answers, unreachable %v, %v", len(answers), unreachable, err)
	}
	got, unreachable = answersFrom(t, a.bus, 1)
	if len(got) != 1 || len(unreachable) != 0 {
		t.Fatalf("after c's lease: %v, unreachable %v", got, unreachable)
	}
	for _, n := range []*node{a, b, c} {
		if n.engine.leaked.Load() != 0 {
			t.Errorf("the bus's channels reached the channel engine")
		}
	}
}

func TestBroadcastBeforeRun(t *testing.T) {
	rs := redistest.Start(t)
	br, err := redis.New(t.Context(), rs.URL(), redis.Options{Prefix: "cluster-early:"})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	bus := cluster.New(br, "x", 0, nil)
	if _, _, err := bus.Broadcast(t.Context(), []byte(`{}`)); err == nil {
		t.Fatal("broadcast before Run succeeded")
	}
}
