package httpapi

import (
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/stream"
)

// TestSSESinkClosesOnce: the hub's broadcast, the broker's delivery and a
// replay may all call SlowConsumer and Close on one stream at once; each
// closes its channel exactly once, never panicking with "close of closed
// channel" (which would crash the process outside any recoverer).
func TestSSESinkClosesOnce(t *testing.T) {
	for round := 0; round < 50; round++ {
		s := newSSESink(hub.NewQueue(1 << 10))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				if i%2 == 0 {
					s.SlowConsumer()
				} else {
					s.Close()
				}
				s.Push(hub.NewMessage(make([]byte, 2<<10))) // overflows: SlowConsumer again
			}(i)
		}
		close(start)
		wg.Wait()
		select {
		case <-s.slow:
		default:
			t.Fatal("slow not closed")
		}
		select {
		case <-s.closed:
		default:
			t.Fatal("closed not closed")
		}
	}
}

// TestCursorsID: the SSE id is the topic's cursor on a one-topic stream,
// a composite cursor holding each topic's position on a stream over
// several, and none at all while no topic has a position (a stream over
// presence topics), never a composite cursor the server would refuse.
func TestCursorsID(t *testing.T) {
	a := stream.Cursor{Kind: stream.KindResource, Epoch: "e1", Pos: 4}
	b := stream.Cursor{Kind: stream.KindChannel, Epoch: "e2", Pos: 9}
	if id := cursorsID(map[string]string{"k": a.String()}, map[string]string{"k": "collections/c/resources"}); id != a.String() {
		t.Errorf("one topic: id %q, want its cursor %q", id, a.String())
	}
	topicOf := map[string]string{"collections/c/resources?env=prod": "collections/c/resources", "channels/x/messages": "channels/x/messages", "channels/x/presence": "channels/x/presence"}
	id := cursorsID(map[string]string{"collections/c/resources?env=prod": a.String(), "channels/x/messages": b.String()}, topicOf)
	for topic, want := range map[string]stream.Cursor{"collections/c/resources": a, "channels/x/messages": b} {
		if got, err := stream.ParseCursorFor(id, topic); err != nil || got != want {
			t.Errorf("id %q for %s: %+v, %v", id, topic, got, err)
		}
	}
	if id := cursorsID(map[string]string{}, topicOf); id != "" {
		t.Errorf("no positions: id %q, want none", id)
	}
}
