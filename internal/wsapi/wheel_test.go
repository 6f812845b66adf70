package wsapi

import (
	"sync"
	"testing"
	"time"
)

// TestWheel: every registered connection is served once per interval;
// once remove returns a connection is never served again, even when it
// was being served; the wheel stops with its last connection and starts
// again with the next.
func TestWheel(t *testing.T) {
	var mu sync.Mutex
	fired := map[*conn]int{}
	removed := map[*conn]bool{}
	var late []*conn
	w := &wheel{interval: func() time.Duration { return 160 * time.Millisecond }}
	w.fire = func(c *conn, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if removed[c] {
			late = append(late, c)
		}
		fired[c]++
	}
	conns := make([]*conn, 40)
	for i := range conns {
		conns[i] = &conn{}
		w.add(conns[i])
		w.add(conns[i]) // idempotent
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached in 10 s", what)
			}
		}
	}
	everyFired := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				if !removed[c] && fired[c] < n {
					return false
				}
			}
			return true
		}
	}
	waitUntil("every connection served twice", everyFired(2))
	for _, c := range conns[:20] {
		w.remove(c)
		mu.Lock()
		removed[c] = true
		mu.Unlock()
	}
	waitUntil("the rest served twice more", everyFired(4))
	mu.Lock()
	if len(late) > 0 {
		t.Errorf("%d connections served after remove returned", len(late))
	}
	mu.Unlock()
	for _, c := range conns[20:] {
		w.remove(c)
	}
	w.mu.Lock()
	if w.quit != nil || len(w.where) != 0 {
		t.Errorf("wheel still running with %d connections", len(w.where))
	}
	w.mu.Unlock()
	again := &conn{}
	w.add(again)
	waitUntil("a connection added after the stop is served", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fired[again] > 0
	})
	w.remove(again)
}
