// Cases for brokers sharing one backend (WithNodes): delivery, order and
// presence across nodes.

package brokertest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

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
