package stream

import (
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// TestCollectionUpdated: a change of a collection's definition reaches
// every subscriber of the collection's topic whatever its selector — live,
// on replay and by long-poll — and never a resource topic's.
func TestCollectionUpdated(t *testing.T) {
	e := newHandoffEnv(t)
	before := e.put(t, "r1", 1)
	sel, _ := store.ParseSelector("env=prod")
	coll, _ := ParseTopic("collections/c/resources")
	one, _ := ParseTopic("collections/c/resources/r1")
	subscribe := func(topic Topic, sel store.Selector, since *Cursor) *gatedSink {
		t.Helper()
		sink := newGatedSink()
		close(sink.release)
		sub, _, run, err := e.res.Subscribe(t.Context(), Request{Topic: topic, Selector: sel, Since: since}, sink)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.res.Unsubscribe(sub) })
		if err := run(t.Context()); err != nil {
			t.Fatal(err)
		}
		return sink
	}
	all, prod, res := subscribe(coll, nil, nil), subscribe(coll, sel, nil), subscribe(one, nil, nil)
	c, err := e.st.UpdateCollection(t.Context(), store.Collection{Name: "c", Description: "new"}, store.CollectionCondition{})
	if err != nil {
		t.Fatal(err)
	}
	after := e.put(t, "r1", 2) // every subscriber is still live after it
	waitFor(t, "the feed", func() bool { return e.feed.Last() >= after })
	waitFor(t, "the deliveries", func() bool { return len(all.got()) == 2 && len(res.got()) == 1 })
	for name, sink := range map[string]*gatedSink{"all": all, "prod": prod} {
		got := sink.got()
		if len(got) == 0 || got[0].Name != EventCollectionUpdated || got[0].Rev != c.Revision {
			t.Fatalf("%s got %+v, want collection.updated at %d first", name, got, c.Revision)
		}
	}
	if got := res.got(); got[0].Name != EventUpdated || got[0].Rev != after {
		t.Fatalf("the resource topic got %+v, want only its update at %d", got, after)
	}

	since := e.feed.Cursor(before)
	replayed := subscribe(coll, sel, &since)
	if got := replayed.got(); len(got) != 1 || got[0].Name != EventCollectionUpdated || got[0].Rev != c.Revision {
		t.Fatalf("replay with a selector got %+v, want the collection change", got)
	}
	evs, _, err := e.res.Poll(t.Context(), coll, store.Predicate{Selector: sel}, &since, 10, time.Millisecond, nil)
	if err != nil || len(evs) != 1 || evs[0].Name != EventCollectionUpdated || evs[0].Collection == nil ||
		evs[0].Collection.Description != "new" || evs[0].Resource != nil {
		t.Fatalf("poll = %+v, %v; want the collection change with the collection", evs, err)
	}
	evs, _, err = e.res.Poll(t.Context(), one, store.Predicate{}, &since, 10, time.Millisecond, nil)
	if err != nil || len(evs) != 1 || evs[0].Name != EventUpdated {
		t.Fatalf("poll of the resource topic = %+v, %v; want its update only", evs, err)
	}
}
