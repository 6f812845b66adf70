// Package cluster carries commands between Tandem nodes over the broker
// (app.Cluster): the connection API's list, disconnect and server-side
// subscriptions reach every node this way. It uses only the broker's own
// operations, on channels whose names clients cannot use ("$…"): every
// node joins the presence of "$nodes" with a lease (the live nodes), and
// subscribes to "$ctl" (commands, no history) and to "$reply.<node>"
// (the answers to its own commands).
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

var _ app.Cluster = (*Bus)(nil)

const (
	nodesChannel = "$nodes"
	ctlChannel   = "$ctl"
	replyPrefix  = "$reply."
	// DefaultLease is how long a node stays listed without renewing.
	DefaultLease = 10 * time.Second
)

// Handler answers one command (app.App.HandleClusterCommand).
type Handler func(ctx context.Context, cmd []byte) []byte

// Bus is one node's end of the command bus.
type Bus struct {
	br    broker.Broker
	node  string
	lease time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	handle  Handler
	ctx     context.Context // Run's
	pending map[string]chan answer
	ready   chan struct{} // closed once Run has subscribed
}

type envelope struct {
	ID     string          `json:"id"`
	From   string          `json:"from"`
	Node   string          `json:"node,omitempty"`
	Body   json.RawMessage `json:"body"`
	Answer bool            `json:"answer,omitempty"`
}

type answer struct {
	node string
	body []byte
}

// New returns the bus of node over br (lease 0: DefaultLease). Wire
// Handler around the broker handler before br.Run, then call Run.
func New(br broker.Broker, node string, lease time.Duration, log *slog.Logger) *Bus {
	if lease <= 0 {
		lease = DefaultLease
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bus{br: br, node: node, lease: lease, log: log, pending: map[string]chan answer{}, ready: make(chan struct{})}
}

// Handler wraps next, the node's broker handler: the bus's channels are
// its own, every other goes to next.
func (b *Bus) Handler(next broker.Handler) broker.Handler { return &filter{next: next, bus: b} }

type filter struct {
	next broker.Handler
	bus  *Bus
}

func (f *filter) HandleMessage(m broker.Message) {
	if strings.HasPrefix(m.Channel, "$") {
		f.bus.deliver(m)
		return
	}
	f.next.HandleMessage(m)
}

func (f *filter) HandlePresence(e broker.PresenceEvent) {
	if !strings.HasPrefix(e.Channel, "$") {
		f.next.HandlePresence(e)
	}
}

func (f *filter) HandleReset(channel, epoch string) {
	if !strings.HasPrefix(channel, "$") {
		f.next.HandleReset(channel, epoch)
	}
}

// Run subscribes the node to the bus (retrying while the broker is down),
// lists it among the live nodes and answers commands with handle until
// ctx ends; then it leaves the list. It returns nil when ctx ends.
func (b *Bus) Run(ctx context.Context, handle Handler) error {
	b.mu.Lock()
	b.handle, b.ctx = handle, ctx
	b.mu.Unlock()
	for _, ch := range []string{ctlChannel, replyPrefix + b.node} {
		_ = b.retry(ctx, func(c context.Context) error { return b.br.Subscribe(c, ch) })
	}
	if ctx.Err() != nil {
		return nil
	}
	close(b.ready)
	member := broker.Member{ID: b.node, ConnID: b.node}
	t := time.NewTicker(b.lease / 3)
	defer t.Stop()
	for {
		jctx, cancel := context.WithTimeout(ctx, b.lease/3)
		if err := b.br.Join(jctx, nodesChannel, member, b.lease); err != nil && ctx.Err() == nil {
			b.log.Warn("cluster: renew node lease", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = b.br.Leave(lctx, nodesChannel, b.node)
			cancel()
			return nil
		case <-t.C:
		}
	}
}

// retry runs f until it succeeds or ctx ends, waiting 200 ms more after
// each failure (at most 5 s).
func (b *Bus) retry(ctx context.Context, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		b.log.Warn("cluster: subscribe to the bus", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(attempt)*200*time.Millisecond, 5*time.Second)):
		}
	}
}

// deliver handles a message of a bus channel (the broker's delivery
// goroutine: it must not block).
func (b *Bus) deliver(m broker.Message) {
	var env envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		b.log.Warn("cluster: unreadable message", "channel", m.Channel, "err", err)
		return
	}
	if env.Answer {
		b.mu.Lock()
		ch := b.pending[env.ID]
		b.mu.Unlock()
		if ch != nil {
			select {
			case ch <- answer{node: env.Node, body: env.Body}:
			default: // the caller has every answer it waits for
			}
		}
		return
	}
	b.mu.Lock()
	handle, ctx := b.handle, b.ctx
	b.mu.Unlock()
	if handle == nil || m.Channel != ctlChannel {
		return
	}
	go func() {
		body := handle(ctx, env.Body)
		out, _ := json.Marshal(envelope{ID: env.ID, From: env.From, Node: b.node, Body: body, Answer: true})
		pctx, cancel := context.WithTimeout(ctx, app.ClusterTimeout)
		defer cancel()
		if _, err := b.br.Publish(pctx, replyPrefix+env.From, out, "", broker.HistoryOptions{}); err != nil && ctx.Err() == nil {
			b.log.Warn("cluster: answer", "to", env.From, "err", err)
		}
	}()
}

// Broadcast implements app.Cluster: it sends cmd to every live node (this
// one included) and waits for each answer until ctx ends. Errors:
// store.ErrUnavailable (the broker cannot list the nodes or publish, or
// Run has not subscribed yet).
func (b *Bus) Broadcast(ctx context.Context, cmd []byte) ([][]byte, []string, error) {
	select {
	case <-b.ready:
	default:
		return nil, nil, store.Errorf(store.CodeUnavailable, "the cluster bus is not running yet")
	}
	members, err := b.br.Presence(ctx, nodesChannel)
	if err != nil {
		return nil, nil, stream.BrokerError(err)
	}
	live := map[string]bool{b.node: true}
	for _, m := range members {
		live[m.ID] = true
	}
	id := randomID()
	ch := make(chan answer, len(live)+8)
	b.mu.Lock()
	b.pending[id] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
	}()
	env, _ := json.Marshal(envelope{ID: id, From: b.node, Body: cmd})
	if _, err := b.br.Publish(ctx, ctlChannel, env, "", broker.HistoryOptions{}); err != nil {
		return nil, nil, stream.BrokerError(err)
	}
	got := map[string][]byte{}
	for len(got) < len(live) {
		select {
		case a := <-ch:
			got[a.node] = a.body
		case <-ctx.Done():
			var missing []string
			for n := range live {
				if _, ok := got[n]; !ok {
					missing = append(missing, n)
				}
			}
			slices.Sort(missing)
			return slices.Collect(maps.Values(got)), missing, nil
		}
	}
	return slices.Collect(maps.Values(got)), nil, nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
