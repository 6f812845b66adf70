// Presence helpers and the single-node presence cases (join, leave,
// lease expiry).

package brokertest

import (
	"encoding/json"
	"fmt"
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

// walkPresence reads every page of ch's presence, limit members at a time,
// checking that pages never split a member and that more is false only on
// the last page.
func walkPresence(t *testing.T, b broker.Broker, ch string, limit int) (all []string, pages int) {
	t.Helper()
	after := ""
	for {
		ms, more, err := b.PresencePage(ctx(t), ch, after, limit)
		if err != nil {
			t.Fatalf("PresencePage(%q, %d): %v", after, limit, err)
		}
		pages++
		ids := map[string]bool{}
		for _, m := range ms {
			if m.ID <= after {
				t.Fatalf("PresencePage(%q) returned member %q, not after it", after, m.ID)
			}
			ids[m.ID] = true
			all = append(all, m.ID+"/"+m.ConnID+string(m.Meta))
		}
		if len(ids) > limit {
			t.Fatalf("PresencePage(%q, %d) returned %d members", after, limit, len(ids))
		}
		if !more {
			return all, pages
		}
		if len(ms) == 0 {
			t.Fatalf("PresencePage(%q) is empty but says more", after)
		}
		after = ms[len(ms)-1].ID
		if pages > 10000 {
			t.Fatal("PresencePage does not end")
		}
	}
}

func testPresencePages(t *testing.T, b broker.Broker, _ *Recorder) {
	const ch = "pages"
	if ms, more, err := b.PresencePage(ctx(t), ch, "", 10); err != nil || len(ms) != 0 || more {
		t.Fatalf("empty channel: PresencePage = %v, %v, %v", ms, more, err)
	}
	// Member IDs that sort tricky byte-wise: a prefix of another, a NUL
	// inside, bytes above 0x7F; alice has two connections.
	ids := []string{"a", "a\x00b", "a\x00", "ab", "alice", "b", "z", "\xc3\xa9", "m1", "m10", "m2"}
	for i, id := range ids {
		join(t, b, ch, id, fmt.Sprintf("c%02d", i), time.Minute)
	}
	join(t, b, ch, "alice", "c99", time.Minute)
	join(t, b, ch, "gone", "cg", time.Minute)
	leave(t, b, ch, "cg")
	join(t, b, ch, "expired", "ce", leaseTTL/3)
	// Presence is ordered by member ID then connection ID (byte-wise, as
	// Go compares strings): the pages must list exactly it, in order.
	Eventually(t, func() bool { return len(presence(t, b, ch)) == len(ids)+1 }, "the short lease did not expire: %q", presence(t, b, ch))
	want := presence(t, b, ch)
	for _, limit := range []int{1, 2, 3, 5, len(ids), len(ids) + 1, 1000} {
		got, pages := walkPresence(t, b, ch, limit)
		if !sameStrings(got, want) {
			t.Errorf("limit %d: pages list %q, want %q", limit, got, want)
		}
		if wantPages := max(1, (len(ids)+limit-1)/limit); pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	// A page starting after an ID that is not a member.
	ms, more, err := b.PresencePage(ctx(t), ch, "m", 2)
	if err != nil || more != true || len(ms) != 2 || ms[0].ID != "m1" || ms[1].ID != "m10" {
		t.Errorf("PresencePage(after m, 2) = %v, %v, %v; want m1, m10 and more", ms, more, err)
	}
	if ms, more, err := b.PresencePage(ctx(t), ch, "\xff", 5); err != nil || len(ms) != 0 || more {
		t.Errorf("PresencePage(after \\xff) = %v, %v, %v; want nothing", ms, more, err)
	}
	// Pages follow later joins and leaves.
	leave(t, b, ch, "c04") // alice's first connection: alice stays
	leave(t, b, ch, "c05") // b
	join(t, b, ch, "c", "c50", time.Minute)
	want = presence(t, b, ch)
	if got, _ := walkPresence(t, b, ch, 3); !sameStrings(got, want) {
		t.Errorf("after changes: pages list %q, want %q", got, want)
	}
}
