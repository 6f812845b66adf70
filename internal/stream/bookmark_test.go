package stream

import (
	"context"
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store/sqlite"
)

// orderSink records the stream position of everything queued, in order.
type orderSink struct {
	mu  sync.Mutex
	log []int64 // event seq, or -pos-1 for a bookmark at pos
}

func (s *orderSink) Push(m *hub.Message) bool {
	s.mu.Lock()
	s.log = append(s.log, m.Seq())
	s.mu.Unlock()
	return true
}
func (s *orderSink) PushWait(_ context.Context, m *hub.Message) error { s.Push(m); return nil }
func (s *orderSink) Close()                                           {}
func (s *orderSink) SlowConsumer()                                    {}

// TestBookmarkNeverBehindQueuedEvent: bookmarks taken while events are
// delivered concurrently never carry a position older than an event queued
// before them (a client resuming from such a bookmark would get that event
// twice; found by TestChaosReconnects).
func TestBookmarkNeverBehindQueuedEvent(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/t.db", sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name string
		kind TopicKind
	}{{"Channel", TopicChannel}, {"Collection", TopicCollection}} {
		kind := tc.kind
		t.Run(tc.name, func(t *testing.T) {
			sink := &orderSink{}
			sub := &Subscription{Key: "k", Topic: Topic{Kind: kind}, sink: sink, live: true, epoch: "e"}
			feed := &Feed{store: st}
			const n = 20000
			done := make(chan struct{})
			go func() {
				defer close(done)
				for seq := int64(1); seq <= n; seq++ {
					sub.Deliver(hub.NewEvent([]byte(`{}`), "k", "", seq))
					feed.last.Store(seq) // the feed advances after its broadcast
				}
			}()
			bookmarks := 0
			for running := true; running; {
				select {
				case <-done:
					running = false
				default:
				}
				attempted, _ := sub.Bookmark(feed, func(c Cursor) bool {
					return sink.Push(hub.NewEvent(nil, "k", "", -c.Pos-1))
				})
				if !attempted {
					t.Fatal("live subscription refused a bookmark")
				}
				bookmarks++
			}
			var last int64
			for i, v := range sink.log {
				if v >= 0 {
					last = v
					continue
				}
				if pos := -v - 1; pos < last {
					t.Fatalf("entry %d: bookmark at %d queued after event %d", i, pos, last)
				}
			}
			t.Logf("%d events, %d bookmarks in order", n, bookmarks)
		})
	}
}
