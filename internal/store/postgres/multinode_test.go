package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// seqRecorder is a hub subscriber that records the revisions it receives.
type seqRecorder struct {
	mu   sync.Mutex
	seqs []int64
}

func (r *seqRecorder) Deliver(m *hub.Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, m.Seq())
	return true
}

func (r *seqRecorder) Close() {}

func (r *seqRecorder) get() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.seqs...)
}

// TestFeedsOnSeveralNodes: three Stores on one database stand for three
// nodes, each with its own change feed. Two of them write concurrently;
// every feed must broadcast every change exactly once, in revision order,
// with no gap. Both poll fallbacks are an hour long, so the feeds can only
// have been woken by LISTEN/NOTIFY.
func TestFeedsOnSeveralNodes(t *testing.T) {
	dsn := newDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const nodes, writers, perWriter = 3, 2, 60
	stores := make([]*Store, nodes)
	recs := make([]*seqRecorder, nodes)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range stores {
		stores[i] = openDSN(t, dsn, Options{PollInterval: time.Hour})
	}
	if _, err := stores[0].CreateCollection(ctx, store.Collection{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	base, err := stores[0].Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		h := hub.New(hub.Options{})
		recs[i] = &seqRecorder{}
		h.Subscribe(stream.CollectionTopic("c"), recs[i])
		f, err := stream.NewFeed(ctx, s, h, stream.FeedOptions{Frames: wire.Frames{}, Poll: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if f.Last() != base {
			t.Fatalf("feed %d starts at %d, want %d", i, f.Last(), base)
		}
		wg.Go(func() { _ = f.Run(ctx) })
	}
	var wwg sync.WaitGroup
	for w := range writers {
		wwg.Go(func() {
			for i := range perWriter {
				r := store.Resource{Collection: "c", ID: fmt.Sprintf("w%d-%d", w, i%7), Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
				if _, _, err := stores[w].PutResource(ctx, r, store.Precondition{}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wwg.Wait()
	if t.Failed() {
		return
	}
	const total = writers * perWriter
	for i, r := range recs {
		deadline := time.Now().Add(20 * time.Second)
		for len(r.get()) < total && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := r.get()
		if len(got) != total {
			t.Fatalf("node %d broadcast %d changes, want %d", i, len(got), total)
		}
		for j, rev := range got {
			if want := base + 1 + int64(j); rev != want {
				t.Fatalf("node %d: change %d has revision %d, want %d (gap, duplicate or disorder)", i, j, rev, want)
			}
		}
	}
}

// TestListenerReconnects: when the listening connection dies (here
// pg_terminate_backend), the store reconnects, LISTENs again and later
// commits by other nodes wake it again.
func TestListenerReconnects(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	writer := openDSN(t, dsn, Options{})
	watcher := openDSN(t, withParam(t, dsn, "application_name", "tandem_watcher"), Options{PollInterval: time.Hour})
	if _, err := writer.CreateCollection(ctx, store.Collection{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	wake := func(what string) {
		t.Helper()
		select {
		case <-watcher.Notify():
		case <-time.After(10 * time.Second):
			t.Fatal(what)
		}
	}
	// The listener's wake-up on connect, then the NOTIFY of the creation
	// (coalesced or not): wait until the listener is idle in LISTEN.
	wake("listener never connected")
	listener := func() (pid int32) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			err := writer.pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
				WHERE application_name = 'tandem_watcher' AND query = 'LISTEN `+notifyChannel+`'`).Scan(&pid)
			if err == nil {
				return pid
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no LISTEN connection of the watcher in pg_stat_activity")
		return 0
	}
	pid := listener()
	time.Sleep(100 * time.Millisecond)
	for len(watcher.Notify()) > 0 {
		<-watcher.Notify()
	}
	var ok bool
	if err := writer.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
	}
	// Nothing was written: this wake-up is the reconnect's, sent after LISTEN.
	wake("the listener did not reconnect")
	if again := listener(); again == pid {
		t.Fatalf("the listener still uses backend %d", pid)
	}
	time.Sleep(100 * time.Millisecond)
	for len(watcher.Notify()) > 0 {
		<-watcher.Notify()
	}
	r, _, err := writer.PutResource(ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	wake("a commit after the reconnect did not wake the watcher")
	cs, err := watcher.Changes(ctx, r.Revision-1, 0)
	if err != nil || len(cs) != 1 || cs[0].Revision != r.Revision {
		t.Fatalf("Changes = %+v, %v", cs, err)
	}
}

// withParam adds a connection parameter to a URL or key=value DSN.
func withParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
