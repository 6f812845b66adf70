package hub

import "testing"

// TestEntriesKeepAttributes checks that a key keeps the attribute of its
// first subscriber while it has subscribers, and loses it with the last.
func TestEntriesKeepAttributes(t *testing.T) {
	h := New(Options{})
	a, b := &queueSub{q: NewQueue(0)}, &queueSub{q: NewQueue(0)}
	h.SubscribeWith("t?env=prod", "sel:prod", a)
	h.SubscribeWith("t?env=prod", "sel:prod", b)
	h.Subscribe("t", a)
	got := map[string]any{}
	for _, e := range h.Entries("t") {
		got[e.Key] = e.Attr
	}
	if len(got) != 2 || got["t?env=prod"] != "sel:prod" || got["t"] != nil {
		t.Fatalf("Entries = %v", got)
	}
	h.Unsubscribe("t?env=prod", a)
	if es := h.Entries("t"); len(es) != 2 {
		t.Fatalf("after one of two left: %v", es)
	}
	h.Unsubscribe("t?env=prod", b)
	h.Unsubscribe("t", a)
	if es := h.Entries("t"); len(es) != 0 {
		t.Fatalf("after everyone left: %v", es)
	}
}
