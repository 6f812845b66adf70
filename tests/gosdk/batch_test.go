// Atomic batches: Client.Batch against the real server, and a Mirror
// that applies a batch's events together — scripted (held back until the
// end event) and live (a reader never sees half a batch).

package gosdk_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// batchEvent is resourceEvent carrying the batch member.
func batchEvent(topic, cursor, id string, revision int, batchID string, last int, end bool) map[string]any {
	f := resourceEvent(topic, "", cursor, id, revision, `{}`)
	f["batch"] = map[string]any{"id": batchID, "lastRevision": last, "end": end}
	return f
}

// TestMirrorBatchScripted: the events of a batch change nothing a reader
// sees until the batch's end event; then all of them apply at once, with
// one OnEvent call.
func TestMirrorBatchScripted(t *testing.T) {
	ss := newScriptServer(t)
	conn := connect(t, newClient(t, ss.URL))
	var calls atomic.Int64
	type made struct {
		m   *tandem.Mirror
		err error
	}
	done := make(chan made, 1)
	go func() {
		m, err := conn.Mirror(testContext(t), "c", &tandem.MirrorOptions{OnEvent: func(*tandem.Mirror, tandem.Event) { calls.Add(1) }})
		done <- made{m, err}
	}()
	sc := ss.accept(t)
	f := sc.expect("subscribe")
	sc.reply(f.Ref, map[string]any{"topic": f.Topic, "cursor": "c0", "start": "snapshot"})
	sc.send(map[string]any{"type": "synced", "topic": f.Topic, "cursor": "c0"})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	m := r.m
	if err := m.WaitSynced(testContext(t)); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	topic := tandem.CollectionTopic("c")
	sc.send(batchEvent(topic, "c1", "a", 1, "b1", 4, false))
	sc.send(batchEvent(topic, "c2", "b", 2, "b1", 4, false))
	eventually(t, "two held events", func() bool { return m.Pending() == 2 })
	if m.Len() != 0 || calls.Load() != 0 || m.Cursor() != "c0" {
		t.Fatalf("half a batch is visible: %d items, %d OnEvent calls, cursor %q", m.Len(), calls.Load(), m.Cursor())
	}
	sc.send(batchEvent(topic, "c3", "c", 3, "b1", 4, true)) // the last this mirror sees; 4 is elsewhere
	eventually(t, "the batch applied", func() bool { return m.Len() == 3 })
	if m.Pending() != 0 || calls.Load() != 1 || m.Cursor() != "c3" || m.Revision() != 3 {
		t.Fatalf("after the end: %d held, %d OnEvent calls, cursor %q, revision %d", m.Pending(), calls.Load(), m.Cursor(), m.Revision())
	}
	sc.send(resourceEvent(topic, "", "c5", "d", 5, `{}`)) // outside a batch: applied at once
	eventually(t, "a single change applied", func() bool { return m.Len() == 4 && calls.Load() == 2 })
}

// TestBatchLive: Client.Batch against the real server; mirrors (one
// filtered) apply each batch whole while a reader checks that what it
// sees is always one batch's state, never a mix.
func TestBatchLive(t *testing.T) {
	srv := StartServer(t)
	c := newClient(t, srv.URL)
	ctx := testContext(t)
	for _, coll := range []string{"pairs", "other"} {
		if err := c.EnsureCollection(ctx, coll); err != nil {
			t.Fatal(err)
		}
	}
	conn := connect(t, c)
	all, err := conn.Mirror(ctx, "pairs", nil)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := conn.Mirror(ctx, "pairs", &tandem.MirrorOptions{Labels: "env=prod"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*tandem.Mirror{all, prod} {
		if err := m.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const batches = 30
	var torn atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a reader of the unfiltered mirror: a, b and c always agree
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				runtime.Gosched()
			}
			var n []float64
			for _, r := range all.Items() {
				var d struct{ N float64 }
				_ = json.Unmarshal(r.Data, &d)
				n = append(n, d.N)
			}
			for _, v := range n {
				if v != n[0] {
					torn.Store(fmt.Sprint(n))
				}
			}
		}
	}()
	prodEnv, devEnv := map[string]string{"env": "prod"}, map[string]string{"env": "dev"}
	var last int64
	for i := range batches {
		d := map[string]int{"n": i}
		res, err := c.Batch(ctx,
			tandem.PutOp("pairs", "a", d, prodEnv),
			tandem.PutOp("pairs", "b", d, prodEnv),
			tandem.PutOp("other", "x", d, nil),
			tandem.PutOp("pairs", "c", d, devEnv), // the filtered mirror's last visible change is b
		)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Results) != 4 || res.Results[0].Revision != res.LastRevision-3 {
			t.Fatalf("result = %+v", res)
		}
		last = res.LastRevision
	}
	eventually(t, "both mirrors at the last batch", func() bool {
		a, _ := all.Get("c")
		b, _ := prod.Get("b")
		return a.Revision == last && b.Revision == last-2 && all.Pending() == 0 && prod.Pending() == 0
	})
	close(stop)
	wg.Wait()
	if v := torn.Load(); v != nil {
		t.Fatalf("a reader saw half a batch: %v", v)
	}
	if prod.Len() != 2 {
		t.Fatalf("the filtered mirror holds %d resources, want a and b", prod.Len())
	}

	// A failing batch names its operation and writes nothing.
	_, err = c.Batch(ctx, tandem.PutOp("pairs", "a", map[string]int{}, nil), tandem.CreateOp("pairs", "b", map[string]int{}, nil))
	if i, ok := tandem.BatchOperation(err); !errors.Is(err, tandem.ErrConflict) || !ok || i != 1 {
		t.Fatalf("create of an existing ID: %v (operation %d %v)", err, i, ok)
	}
	_, err = c.Batch(ctx, tandem.DeleteOp("pairs", "c").IfMatch(1))
	if i, ok := tandem.BatchOperation(err); !errors.Is(err, tandem.ErrPreconditionFailed) || !ok || i != 0 {
		t.Fatalf("stale ifMatch: %v", err)
	}
	if r, err := c.Get(ctx, "pairs", "a"); err != nil || r.Revision != last-3 {
		t.Fatalf("a after failed batches: %+v %v", r, err)
	}
	// Idempotent retries replay the reply.
	gone := "x"
	ops := []tandem.BatchOp{tandem.PatchOp("pairs", "a", map[string]any{"extra": true}, map[string]*string{"env": nil}), tandem.PutOp("other", gone, map[string]int{}, nil).IfNoneMatch()}
	first, err := c.BatchWithKey(ctx, "k-1", tandem.PatchOp("pairs", "a", map[string]any{"extra": true}, map[string]*string{"env": nil}))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.BatchWithKey(ctx, "k-1", tandem.PatchOp("pairs", "a", map[string]any{"extra": true}, map[string]*string{"env": nil}))
	if err != nil || again.Id != first.Id || again.LastRevision != first.LastRevision {
		t.Fatalf("replay = %+v, %v; want %+v", again, err, first)
	}
	if _, err := c.Batch(ctx, ops...); !errors.Is(err, tandem.ErrPreconditionFailed) {
		t.Fatalf("ifNoneMatch on an existing resource: %v", err)
	}
}
