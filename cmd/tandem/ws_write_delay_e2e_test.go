package main

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
	// more than one per window fits into the time the burst took, plus
	// the first event's write, which the client may read before the
	// server has counted it (the counter moves just after each write, so
	// the burst's last write may not be counted yet either: only the
	// upper bound is exact).
	n := writes() - before
	if limit := float64(elapsed/window) + 2; n > limit {
		t.Fatalf("%v writes for %d events in %v, want at most %v (one per %v window, and the first event's)", n, burst, elapsed, limit, window)
	}
}

// TestWSWriterSlotNotHeldByStalledClient: with one writer slot
// (--ws-writers 1), a client that stops reading — its socket full — does
// not hold the slot while its write waits, so every other connection
// keeps receiving.
func TestWSWriterSlotNotHeldByStalledClient(t *testing.T) {
	s := startServer(t, "--ws-writers", "1", "--write-timeout", "60s", "--queue-bytes", "67108864")
	// The stalled client: a tiny receive buffer, subscribed, never read.
	d := &websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}).DialContext}
	stalled, _, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if err := stalled.WriteJSON(map[string]any{"type": "subscribe", "ref": "1", "topic": "channels/big/messages"}); err != nil {
		t.Fatal(err)
	}
	reader := s.dial(t)
	reader.subscribe("channels/big/messages", nil)
	// Wait until the stalled client is subscribed (two subscribers).
	deadline := time.Now().Add(10 * time.Second)
	for scrapeGauge(t, s, "tandem_ws_subscriptions") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled client did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 16 MB of messages: far more than the stalled socket's buffers, so
	// its writer ends up waiting in a blocked write.
	pad := strings.Repeat("x", 60000)
	const n = 270
	for i := range n {
		s.publish(t, "big", fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))
	}
	for i := range n {
		f := reader.nextOfType("event", 20*time.Second)
		if got := f["message"].(map[string]any)["data"].(map[string]any)["i"]; got != float64(i) {
			t.Fatalf("event %d carries %v", i, got)
		}
	}
}
