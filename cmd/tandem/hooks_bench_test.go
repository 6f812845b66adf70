package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchApp answers every hook at once: publish and subscribe with {},
// rpc with {"data":{"ok":true}}.
func benchApp(b *testing.B) *httptest.Server {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/rpc") {
			_, _ = w.Write([]byte(`{"data":{"ok":true}}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchConn is a bare WebSocket client (no frame validation: the
// benchmark measures the server).
type benchConn struct {
	c   *websocket.Conn
	ref int
}

func dialBench(b *testing.B, s *testServer) *benchConn {
	b.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, _, err := c.ReadMessage(); err != nil { // welcome
		b.Fatal(err)
	}
	return &benchConn{c: c}
}

// roundTrip sends frame and waits for its reply (ok or not: a failed
// reply fails the benchmark).
func (bc *benchConn) roundTrip(b *testing.B, frame map[string]any) {
	bc.ref++
	ref := fmt.Sprint(bc.ref)
	frame["ref"] = ref
	if err := bc.c.WriteJSON(frame); err != nil {
		b.Error(err)
		return
	}
	for {
		_, raw, err := bc.c.ReadMessage()
		if err != nil {
			b.Error(err)
			return
		}
		var f struct {
			Type string `json:"type"`
			Ref  string `json:"ref"`
			OK   bool   `json:"ok"`
		}
		_ = json.Unmarshal(raw, &f)
		if f.Type == "reply" && f.Ref == ref {
			if !f.OK {
				b.Errorf("reply: %s", raw)
			}
			return
		}
	}
}

func percentiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	if len(ds) == 0 {
		return
	}
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkHookLatency is the round trip of a publish and of a subscribe
// over one WebSocket without and with the hook (a local application
// answering at once): the difference is what the hook adds.
//
//	go test ./cmd/tandem -run '^$' -bench BenchmarkHookLatency -benchtime 2000x
func BenchmarkHookLatency(b *testing.B) {
	app := benchApp(b)
	for _, tc := range []struct {
		name string
		args []string
		op   func(i int) map[string]any
	}{
		{"Publish/NoHook", nil, publishFrame},
		{"Publish/Hook", []string{"--hook-publish", app.URL + "/publish"}, publishFrame},
		{"Subscribe/NoHook", nil, subscribeFrame},
		{"Subscribe/Hook", []string{"--hook-subscribe", app.URL + "/subscribe"}, subscribeFrame},
		{"Connect/NoHook", nil, nil},
		{"Connect/Hook", []string{"--hook-connect", app.URL + "/connect"}, nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			args := append([]string{"--max-subscriptions", "0", "--max-subscriptions-per-principal", "0", "--max-conns-per-ip", "0"}, hookArgs(tc.args...)...)
			s := startServer(b, args...)
			b.Cleanup(s.stop)
			ds := make([]time.Duration, 0, b.N)
			if tc.op == nil { // connect: dial, welcome, close
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, _, err := c.ReadMessage(); err != nil {
						b.Fatal(err)
					}
					ds = append(ds, time.Since(start))
					c.Close()
				}
				percentiles(b, ds)
				return
			}
			bc := dialBench(b, s)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				f := tc.op(i)
				bc.roundTrip(b, f)
				ds = append(ds, time.Since(start))
				if f["type"] == "subscribe" { // stay under the per-connection limit
					bc.roundTrip(b, map[string]any{"type": "unsubscribe", "topic": f["topic"]})
				}
			}
			percentiles(b, ds)
		})
	}
}

func publishFrame(int) map[string]any {
	return map[string]any{"type": "publish", "topic": "channels/bench/messages", "data": map[string]any{"t": "hello"}}
}

func subscribeFrame(i int) map[string]any {
	return map[string]any{"type": "subscribe", "topic": fmt.Sprintf("channels/bench%d/messages", i)}
}

// BenchmarkRPC measures RPC round trips per second through a local
// application, over one connection (one call at a time) and over 1,000
// connections (one call at a time each).
//
//	go test ./cmd/tandem -run '^$' -bench BenchmarkRPC -benchtime 20000x
func BenchmarkRPC(b *testing.B) {
	app := benchApp(b)
	for _, conns := range []int{1, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			s := startServer(b, hookArgs("--hook-rpc", app.URL+"/rpc", "--max-conns-per-ip", "0", "--hook-max-concurrent", "256")...)
			b.Cleanup(s.stop)
			cs := make([]*benchConn, conns)
			for i := range cs {
				cs[i] = dialBench(b, s)
			}
			frame := func() map[string]any {
				return map[string]any{"type": "rpc", "method": "move", "data": map[string]any{"square": 4}}
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + conns - 1) / conns
			for _, bc := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						bc.roundTrip(b, frame())
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*conns)/time.Since(start).Seconds(), "rpc/s")
		})
	}
}
