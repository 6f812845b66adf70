// Presence helpers and the single-node presence cases (join, leave,
// lease expiry).

package brokertest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

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
