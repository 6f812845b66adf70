package httpapi

import (
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/hub"
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
