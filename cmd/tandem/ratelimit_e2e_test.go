package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestRateLimits(t *testing.T) {
	s := startServer(t, "--rate-limit", "1", "--rate-burst", "3")
	t.Run("REST", func(t *testing.T) {
		var last int
		for i := 0; i < 5; i++ {
			resp, p := s.do(t, "GET", "/v1/collections", "", "")
			last = resp.StatusCode
			if resp.StatusCode == 429 {
				if resp.Header.Get("Retry-After") == "" || !strings.Contains(resp.Header.Get("RateLimit"), "remaining=0") {
					t.Errorf("429 headers: %v", resp.Header)
				}
				if p["type"] != "https://tandem.dev/problems/rate-limited" {
					t.Errorf("problem = %v", p)
				}
				return
			}
			if resp.Header.Get("RateLimit-Policy") == "" {
				t.Errorf("no RateLimit-Policy header")
			}
		}
		t.Fatalf("never limited (last status %d)", last)
	})
	t.Run("WebSocket", func(t *testing.T) {
		ws := s.dial(t)
		var limited bool
		for i := 0; i < 4 && !limited; i++ {
			r := ws.request(map[string]any{"type": "ping"})
			if r["ok"] == false {
				limited = r["problem"].(map[string]any)["status"] == float64(429)
			}
		}
		if !limited {
			t.Fatal("frames never limited")
		}
		// A client that keeps flooding is closed with 4029.
		for i := 0; i < 20; i++ {
			if err := ws.c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","ref":"f"}`)); err != nil {
				break
			}
		}
		if code := closeCode(ws.closeErr(5 * time.Second)); code != 4029 {
			t.Fatalf("close code %d, want 4029", code)
		}
	})
}
