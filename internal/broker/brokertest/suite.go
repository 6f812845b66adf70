package brokertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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

func testPublishOffsets(t *testing.T, b broker.Broker, r *Recorder) {
	const ch, n = "offsets", 5
	ms := publish(t, b, ch, n, big)
	for i, m := range ms {
		if m.Offset != int64(i+1) || m.Channel != ch || m.Epoch == "" || m.Epoch != ms[0].Epoch ||
			m.Publisher != "pub" || string(m.Data) != string(data(i)) || m.Time.IsZero() {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	if p := position(t, b, ch); p != (broker.Position{Epoch: ms[0].Epoch, Offset: n}) {
		t.Errorf("Position = %+v, want epoch %s offset %d", p, ms[0].Epoch, n)
	}
	got, top := history(t, b, ch, broker.Position{}, 0, nil)
	if !equal(offsets(got), span(1, n)) || top.Offset != n {
		t.Errorf("History = %v at %+v", offsets(got), top)
	}
	for i, m := range got {
		if string(m.Data) != string(data(i)) || m.Publisher != "pub" || m.Epoch != ms[0].Epoch || m.Channel != ch ||
			m.Time.Sub(ms[i].Time).Abs() > time.Millisecond {
			t.Errorf("history message %d = %+v, published %+v", i, m, ms[i])
		}
	}
}

func testPayloadVerbatim(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "verbatim:ünï{code}"
	subscribe(t, b, ch)
	cases := []struct{ publisher, data string }{
		{"", `null`},
		{"a:b:c", `{"x":"1:2:3","nl":"a\nb"}`},
		{"ünïcode 3:", "[1,\n 2]"},
		{"9:", `"9:x"`},
	}
	for _, c := range cases {
		if _, err := b.Publish(ctx(t), ch, json.RawMessage(c.data), c.publisher, big); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	Eventually(t, func() bool { return len(r.Messages(ch)) == len(cases) }, "delivered %d", len(r.Messages(ch)))
	hist, _ := history(t, b, ch, broker.Position{}, 0, nil)
	for name, ms := range map[string][]broker.Message{"delivered": r.Messages(ch), "history": hist} {
		if len(ms) != len(cases) {
			t.Fatalf("%s: %d messages", name, len(ms))
		}
		for i, c := range cases {
			if ms[i].Publisher != c.publisher || string(ms[i].Data) != c.data || ms[i].Channel != ch {
				t.Errorf("%s %d: publisher %q data %q channel %q, want %q %q", name, i, ms[i].Publisher, ms[i].Data, ms[i].Channel, c.publisher, c.data)
			}
		}
	}
}

func testPositionNewChannel(t *testing.T, b broker.Broker, r *Recorder) {
	p := position(t, b, "new")
	if p.Epoch == "" || p.Offset != 0 {
		t.Fatalf("Position of a new channel = %+v", p)
	}
	if q := position(t, b, "new"); q != p {
		t.Errorf("second Position = %+v, want %+v", q, p)
	}
	ms, top := history(t, b, "new", broker.Position{}, 10, nil)
	if len(ms) != 0 || top != p {
		t.Errorf("History of a new channel = %v at %+v", offsets(ms), top)
	}
	history(t, b, "new", p, 10, nil)
	ms, top = history(t, b, "other", broker.Position{}, 10, nil)
	if len(ms) != 0 || top.Epoch == "" || top.Offset != 0 {
		t.Errorf("History of a new channel = %v at %+v", offsets(ms), top)
	}
	m := publish(t, b, "new", 1, big)[0]
	if m.Epoch != p.Epoch || m.Offset != 1 {
		t.Errorf("first publish = %+v, want epoch %s offset 1", m, p.Epoch)
	}
}

func testDeliverOnlySubscribed(t *testing.T, b broker.Broker, r *Recorder) {
	subscribe(t, b, "a")
	subscribe(t, b, "a") // idempotent
	subscribe(t, b, "fence")
	publish(t, b, "b", 2, big)
	publish(t, b, "a", 3, big)
	publish(t, b, "fence", 1, big)
	Eventually(t, func() bool { return len(r.Messages("fence")) == 1 }, "fence not delivered")
	Eventually(t, func() bool { return len(r.Messages("a")) == 3 }, "a: got %v", offsets(r.Messages("a")))
	if got := r.Messages("b"); len(got) != 0 {
		t.Errorf("unsubscribed channel b delivered %v", offsets(got))
	}
	if err := b.Unsubscribe(ctx(t), "a"); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	r.Forget("a")
	publish(t, b, "a", 2, big)
	publish(t, b, "fence", 1, big)
	Eventually(t, func() bool { return len(r.Messages("fence")) == 2 }, "fence not delivered")
	if got := r.Messages("a"); !equal(offsets(got), span(1, 3)) {
		t.Errorf("a after Unsubscribe: delivered %v, want 1..3", offsets(got))
	}
	subscribe(t, b, "a")
	publish(t, b, "a", 1, big)
	Eventually(t, func() bool { return len(r.Messages("a")) == 4 }, "a after resubscribe: %v", offsets(r.Messages("a")))
	if got := r.Messages("a"); got[3].Offset != 6 {
		t.Errorf("a after resubscribe: delivered %v, want 1..3, 6", offsets(got))
	}
}

func testConcurrentPublishers(t *testing.T, b broker.Broker, r *Recorder) {
	const ch, workers, each = "busy", 4, 100
	subscribe(t, b, ch)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := b.Publish(ctx(t), ch, data(w*each+i), "pub", broker.HistoryOptions{Size: 50}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	Eventually(t, func() bool { return len(r.Messages(ch)) >= workers*each }, "delivered %d of %d", len(r.Messages(ch)), workers*each)
	if got := offsets(r.Messages(ch)); !equal(got, span(1, workers*each)) {
		t.Errorf("delivered offsets not 1..%d in order: %v", workers*each, got)
	}
	ms, top := history(t, b, ch, broker.Position{}, 0, nil)
	if top.Offset != workers*each || !equal(offsets(ms), span(workers*each-49, workers*each)) {
		t.Errorf("History = %v at %+v", offsets(ms), top)
	}
}

func testHistorySinceLimit(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "hist"
	e := publish(t, b, ch, 10, big)[0].Epoch
	cases := []struct {
		since broker.Position
		limit int
		want  []int64
	}{
		{broker.Position{}, 0, span(1, 10)},
		{broker.Position{}, 3, span(1, 3)},
		{broker.Position{Epoch: e}, 0, span(1, 10)},
		{broker.Position{Epoch: e, Offset: 3}, 4, span(4, 7)},
		{broker.Position{Epoch: e, Offset: 8}, 0, span(9, 10)},
		{broker.Position{Epoch: e, Offset: 8}, 100, span(9, 10)},
		{broker.Position{Epoch: e, Offset: 10}, 10, nil},
	}
	for _, c := range cases {
		ms, top := history(t, b, ch, c.since, c.limit, nil)
		if !equal(offsets(ms), c.want) || top != (broker.Position{Epoch: e, Offset: 10}) {
			t.Errorf("History(%+v, %d) = %v at %+v, want %v at %s/10", c.since, c.limit, offsets(ms), top, c.want, e)
		}
	}
}

func testErrGoneWrongEpoch(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "epoch"
	e := publish(t, b, ch, 3, big)[0].Epoch
	for _, since := range []broker.Position{
		{Epoch: "not-" + e, Offset: 1},
		{Epoch: "not-" + e, Offset: 0},
		{Epoch: "", Offset: 2},
		{Epoch: e, Offset: 4}, // from the future
	} {
		_, top := history(t, b, ch, since, 10, broker.ErrGone)
		_ = top
	}
	// A new channel has an epoch too: a cursor from elsewhere is gone.
	history(t, b, "fresh", broker.Position{Epoch: e, Offset: 0}, 10, broker.ErrGone)
}

func testErrGoneSizeBound(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "bounded"
	opts := broker.HistoryOptions{Size: 3}
	e := publish(t, b, ch, 10, opts)[0].Epoch
	for _, off := range []int64{0, 1, 5, 6} {
		history(t, b, ch, broker.Position{Epoch: e, Offset: off}, 10, broker.ErrGone)
	}
	ms, _ := history(t, b, ch, broker.Position{Epoch: e, Offset: 7}, 10, nil)
	if !equal(offsets(ms), span(8, 10)) {
		t.Errorf("History since 7 = %v, want 8..10", offsets(ms))
	}
	ms, _ = history(t, b, ch, broker.Position{}, 10, nil)
	if !equal(offsets(ms), span(8, 10)) {
		t.Errorf("History from the oldest = %v, want 8..10", offsets(ms))
	}
	// Shrinking the bound applies on the next publish.
	publish(t, b, ch, 1, broker.HistoryOptions{Size: 1})
	ms, _ = history(t, b, ch, broker.Position{}, 10, nil)
	if !equal(offsets(ms), []int64{11}) {
		t.Errorf("History after Size 1 = %v, want [11]", offsets(ms))
	}
	history(t, b, ch, broker.Position{Epoch: e, Offset: 9}, 10, broker.ErrGone)
}

func testSizeZero(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "nohist"
	subscribe(t, b, ch)
	e := publish(t, b, ch, 2, broker.HistoryOptions{})[0].Epoch
	Eventually(t, func() bool { return len(r.Messages(ch)) == 2 }, "Size 0 messages must still be delivered")
	ms, top := history(t, b, ch, broker.Position{}, 10, nil)
	if len(ms) != 0 || top != (broker.Position{Epoch: e, Offset: 2}) {
		t.Errorf("History = %v at %+v", offsets(ms), top)
	}
	history(t, b, ch, broker.Position{Epoch: e, Offset: 2}, 10, nil)
	history(t, b, ch, broker.Position{Epoch: e, Offset: 1}, 10, broker.ErrGone)
}

func testTTLExpiry(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "ttl"
	opts := broker.HistoryOptions{Size: 100, TTL: historyTTL}
	e := publish(t, b, ch, 3, opts)[0].Epoch
	ms, _ := history(t, b, ch, broker.Position{}, 0, nil)
	if !equal(offsets(ms), span(1, 3)) {
		t.Fatalf("History before the TTL = %v", offsets(ms))
	}
	time.Sleep(historyTTL + 100*time.Millisecond)
	// Expired on read, without a publish.
	ms, top := history(t, b, ch, broker.Position{}, 0, nil)
	if len(ms) != 0 || top != (broker.Position{Epoch: e, Offset: 3}) {
		t.Errorf("History after the TTL = %v at %+v, want none at 3", offsets(ms), top)
	}
	history(t, b, ch, broker.Position{Epoch: e, Offset: 2}, 0, broker.ErrGone)
	history(t, b, ch, broker.Position{Epoch: e, Offset: 3}, 0, nil)
	// Expired on publish.
	publish(t, b, ch, 1, opts)
	ms, top = history(t, b, ch, broker.Position{}, 0, nil)
	if !equal(offsets(ms), []int64{4}) || top.Epoch != e {
		t.Errorf("History after a new publish = %v at %+v, want [4]", offsets(ms), top)
	}
	history(t, b, ch, broker.Position{Epoch: e, Offset: 1}, 0, broker.ErrGone)
	ms, _ = history(t, b, ch, broker.Position{Epoch: e, Offset: 3}, 0, nil)
	if !equal(offsets(ms), []int64{4}) {
		t.Errorf("History since 3 = %v, want [4]", offsets(ms))
	}
}

func join(t *testing.T, b broker.Broker, ch, member, conn string, ttl time.Duration) {
	t.Helper()
	m := broker.Member{ID: member, ConnID: conn, Meta: json.RawMessage(`{"conn":"` + conn + `"}`)}
	if err := b.Join(ctx(t), ch, m, ttl); err != nil {
		t.Fatalf("Join(%s/%s): %v", member, conn, err)
	}
}

func leave(t *testing.T, b broker.Broker, ch, conn string) {
	t.Helper()
	if err := b.Leave(ctx(t), ch, conn); err != nil {
		t.Fatalf("Leave(%s): %v", conn, err)
	}
}

func presence(t *testing.T, b broker.Broker, ch string) []string {
	t.Helper()
	ms, err := b.Presence(ctx(t), ch)
	if err != nil {
		t.Fatalf("Presence: %v", err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID + "/" + m.ConnID + string(m.Meta)
	}
	return out
}

func diffs(es []broker.PresenceEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		verb := "leave"
		if e.Join {
			verb = "join"
		}
		out[i] = verb + " " + e.Member.ID
	}
	return out
}

func sameStrings(a, b []string) bool {
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

// expectPresence waits for channel's presence events to be want, using a
// fence member to be sure nothing else is on its way.
func expectPresence(t *testing.T, b broker.Broker, r *Recorder, ch string, want []string, fence string) {
	t.Helper()
	join(t, b, ch, fence, fence, time.Minute)
	leave(t, b, ch, fence)
	want = append(append([]string(nil), want...), "join "+fence, "leave "+fence)
	Eventually(t, func() bool { return len(r.Presence(ch)) >= len(want) }, "presence events %v, want %v", diffs(r.Presence(ch)), want)
	if got := diffs(r.Presence(ch)); !sameStrings(got, want) {
		t.Fatalf("presence events %v, want %v", got, want)
	}
}

func testPresenceJoinLeave(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "room"
	subscribe(t, b, ch)
	join(t, b, ch, "alice", "c1", time.Minute)
	join(t, b, ch, "alice", "c2", time.Minute)
	join(t, b, ch, "alice", "c1", time.Minute) // renew: silent
	join(t, b, ch, "bob", "c3", time.Minute)
	if got, want := presence(t, b, ch), []string{`alice/c1{"conn":"c1"}`, `alice/c2{"conn":"c2"}`, `bob/c3{"conn":"c3"}`}; !sameStrings(got, want) {
		t.Errorf("Presence = %v, want %v", got, want)
	}
	expectPresence(t, b, r, ch, []string{"join alice", "join bob"}, "f1")
	leave(t, b, ch, "c1")
	leave(t, b, ch, "nobody") // unknown connection: ignored
	expectPresence(t, b, r, ch, []string{"join alice", "join bob", "join f1", "leave f1"}, "f2")
	leave(t, b, ch, "c2")
	leave(t, b, ch, "c3")
	expectPresence(t, b, r, ch, []string{"join alice", "join bob", "join f1", "leave f1", "join f2", "leave f2", "leave alice", "leave bob"}, "f3")
	if got := presence(t, b, ch); len(got) != 0 {
		t.Errorf("Presence after leaves = %v", got)
	}
	for _, e := range r.Presence(ch) {
		if e.Channel != ch || (e.Member.ID == "alice" && e.Member.ConnID == "") {
			t.Errorf("presence event %+v", e)
		}
	}
}

func testPresenceLeaseExpiry(t *testing.T, b broker.Broker, r *Recorder) {
	const ch = "lease"
	subscribe(t, b, ch)
	join(t, b, ch, "alice", "c1", leaseTTL)
	join(t, b, ch, "alice", "c2", leaseTTL)
	join(t, b, ch, "bob", "c3", leaseTTL)
	// Renew bob for longer than the lease: he must stay.
	deadline := time.Now().Add(2 * leaseTTL)
	for time.Now().Before(deadline) {
		time.Sleep(leaseTTL / 4)
		join(t, b, ch, "bob", "c3", leaseTTL)
	}
	Eventually(t, func() bool { return len(r.Presence(ch)) >= 3 }, "no leave after the lease: %v", diffs(r.Presence(ch)))
	if got, want := diffs(r.Presence(ch)), []string{"join alice", "join bob", "leave alice"}; !sameStrings(got, want) {
		t.Errorf("presence events %v, want %v", got, want)
	}
	if got, want := presence(t, b, ch), []string{`bob/c3{"conn":"c3"}`}; !sameStrings(got, want) {
		t.Errorf("Presence = %v, want %v", got, want)
	}
	Eventually(t, func() bool { return len(r.Presence(ch)) >= 4 }, "bob did not expire: %v", diffs(r.Presence(ch)))
	if got := presence(t, b, ch); len(got) != 0 {
		t.Errorf("Presence after expiry = %v", got)
	}
}

func testPresenceNotSubscribed(t *testing.T, b broker.Broker, r *Recorder) {
	join(t, b, "quiet", "alice", "c1", time.Minute)
	subscribe(t, b, "fence")
	join(t, b, "fence", "bob", "c2", time.Minute)
	Eventually(t, func() bool { return len(r.Presence("fence")) == 1 }, "fence join not delivered")
	if got := r.Presence("quiet"); len(got) != 0 {
		t.Errorf("unsubscribed channel delivered presence %v", diffs(got))
	}
	if got := presence(t, b, "quiet"); len(got) != 1 {
		t.Errorf("Presence = %v", got)
	}
}

func testMultiNodePublish(t *testing.T, bs []broker.Broker, rs []*Recorder) {
	const ch = "shared"
	a, b := bs[0], bs[1]
	subscribe(t, a, ch)
	subscribe(t, b, ch)
	m1 := publish(t, a, ch, 1, big)[0]
	m2 := publish(t, b, ch, 1, big)[0]
	if m1.Offset != 1 || m2.Offset != 2 || m1.Epoch != m2.Epoch {
		t.Fatalf("offsets across nodes: %+v then %+v", m1, m2)
	}
	for i, r := range rs {
		Eventually(t, func() bool { return len(r.Messages(ch)) == 2 }, "node %d got %v", i, offsets(r.Messages(ch)))
		if got := r.Messages(ch); got[0].Epoch != m1.Epoch || !equal(offsets(got), span(1, 2)) {
			t.Errorf("node %d got %+v", i, got)
		}
	}
	if p := position(t, b, ch); p != (broker.Position{Epoch: m1.Epoch, Offset: 2}) {
		t.Errorf("Position on node b = %+v", p)
	}
	ms, _ := history(t, b, ch, broker.Position{Epoch: m1.Epoch, Offset: 0}, 0, nil)
	if !equal(offsets(ms), span(1, 2)) {
		t.Errorf("History on node b = %v", offsets(ms))
	}
	// Only b subscribes to "b-only".
	subscribe(t, b, "b-only")
	publish(t, a, "b-only", 1, big)
	publish(t, a, ch, 1, big)
	Eventually(t, func() bool { return len(rs[0].Messages(ch)) == 3 && len(rs[1].Messages("b-only")) == 1 }, "not delivered")
	if got := rs[0].Messages("b-only"); len(got) != 0 {
		t.Errorf("node a got %v on a channel it did not subscribe to", offsets(got))
	}
}

func testMultiNodeConcurrent(t *testing.T, bs []broker.Broker, rs []*Recorder) {
	const ch, perNode, each = "crowd", 2, 50
	for _, b := range bs {
		subscribe(t, b, ch)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(bs)*perNode)
	for _, b := range bs {
		for w := range perNode {
			wg.Go(func() {
				for i := range each {
					if _, err := b.Publish(ctx(t), ch, data(w*each+i), "pub", big); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	total := int64(len(bs) * perNode * each)
	for i, r := range rs {
		Eventually(t, func() bool { return int64(len(r.Messages(ch))) >= total }, "node %d got %d of %d", i, len(r.Messages(ch)), total)
		if got := offsets(r.Messages(ch)); !equal(got, span(1, total)) {
			t.Errorf("node %d: offsets not 1..%d in order: %v", i, total, got)
		}
	}
}

func testMultiNodePresence(t *testing.T, bs []broker.Broker, rs []*Recorder) {
	const ch = "lobby"
	a, b := bs[0], bs[1]
	subscribe(t, b, ch)
	join(t, a, ch, "alice", "c1", time.Minute)
	join(t, b, ch, "alice", "c2", time.Minute) // same member on another node
	join(t, a, ch, "carol", "c3", leaseTTL)    // expires: some node's sweeper emits the leave
	if got, want := presence(t, b, ch), []string{`alice/c1{"conn":"c1"}`, `alice/c2{"conn":"c2"}`, `carol/c3{"conn":"c3"}`}; !sameStrings(got, want) {
		t.Errorf("Presence on b = %v, want %v", got, want)
	}
	leave(t, a, ch, "c1")
	leave(t, b, ch, "c2")
	want := []string{"join alice", "join carol", "leave alice", "leave carol"}
	Eventually(t, func() bool { return len(rs[1].Presence(ch)) >= len(want) }, "node b saw %v, want %v", diffs(rs[1].Presence(ch)), want)
	time.Sleep(2 * leaseTTL) // a duplicate leave from the other sweeper would show by now
	got := diffs(rs[1].Presence(ch))
	slices.Sort(got) // carol's expiry may come before alice's leave
	if !sameStrings(got, want) {
		t.Errorf("node b saw %v, want %v", got, want)
	}
	if got := rs[0].Presence(ch); len(got) != 0 {
		t.Errorf("node a did not subscribe but saw %v", diffs(got))
	}
	if got := presence(t, a, ch); len(got) != 0 {
		t.Errorf("Presence on a after leaves = %v", got)
	}
}
