package main

import (
	"fmt"
	"testing"
	"time"
)

// TestWSWriteDelay: with --ws-write-delay, writes to one connection are at
// least the window apart, so a burst of events goes out in few writes, and
// every event still arrives once, in order.
func TestWSWriteDelay(t *testing.T) {
	const window = 300 * time.Millisecond
	s := startServer(t, "--ws-write-delay", window.String())
	ws := s.dial(t)
	ws.subscribe("channels/burst/messages", nil)
	s.publish(t, "burst", `0`)
	if f := ws.nextOfType("event", 5*time.Second); fmt.Sprint(f["message"].(map[string]any)["data"]) != "0" {
		t.Fatalf("first event %v", f)
	}
	writes := func() float64 { return scrapeGauge(t, s, "tandem_ws_writes_total") }
	before := writes()
	start := time.Now()
	const burst = 20
	for i := 1; i <= burst; i++ {
		s.publish(t, "burst", fmt.Sprint(i))
	}
	for i := 1; i <= burst; i++ {
		f := ws.nextOfType("event", 10*time.Second)
		if got := fmt.Sprint(f["message"].(map[string]any)["data"]); got != fmt.Sprint(i) {
			t.Fatalf("event %d carries %s", i, got)
		}
	}
	elapsed := time.Since(start)
	// Writes are at least a window apart: however slow the machine, no
	// more than one per window fits into the time the burst took.
	n := writes() - before
	if limit := float64(elapsed/window) + 1; n > limit || n < 1 {
		t.Fatalf("%v writes for %d events in %v, want 1 to %v (one per %v window)", n, burst, elapsed, limit, window)
	}
}
