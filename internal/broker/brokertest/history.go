// Single-node cases for publishing, delivery to subscribers, and history
// reads with their bounds (size, TTL, epoch).

package brokertest

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

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
