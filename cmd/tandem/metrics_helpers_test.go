// Helpers that read the server's /metrics: waiting for the gauges to
// return to their baseline, and parsing the Prometheus text format.

package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverGauges are the /metrics values that must return to baseline.
type serverGauges struct {
	conns, subs, keys, goroutines float64
}

// waitMetrics scrapes /metrics until the gauges are at base (connections
// and subscriptions zero, hub keys at base, goroutines within a small
// slack of base) or the deadline passes. With base nil it waits for the
// goroutine count to settle and returns the gauges as the baseline.
func waitMetrics(t *testing.T, s *testServer, within time.Duration, base *serverGauges) *serverGauges {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	scrape := func() serverGauges {
		resp, err := hc.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		m := parseMetrics(sb.String())
		return serverGauges{conns: m["tandem_ws_connections"], subs: m["tandem_ws_subscriptions"], keys: m["tandem_hub_keys"], goroutines: m["go_goroutines"]}
	}
	deadline := time.Now().Add(within)
	var g, prev serverGauges
	for {
		g = scrape()
		if base == nil {
			if g == prev && g.conns == 0 && g.subs == 0 {
				return &g
			}
		} else if g.conns == 0 && g.subs == 0 && g.keys == base.keys && g.goroutines <= base.goroutines+goroutineSlack {
			t.Logf("back to baseline: %+v (baseline %+v)", g, *base)
			return &g
		}
		if time.Now().After(deadline) {
			break
		}
		prev = g
		time.Sleep(100 * time.Millisecond)
	}
	if base == nil {
		t.Fatalf("metrics never settled: %+v", g)
	}
	t.Fatalf("leak: gauges %+v did not return to baseline %+v (goroutine slack %d) within %v", g, *base, goroutineSlack, within)
	return nil
}

// goroutineSlack absorbs goroutines that come and go independently of the
// clients (HTTP keep-alive connections of the test's own client, timers).
// A leak of even one goroutine per client would exceed it by far.
const goroutineSlack = 15

// parseMetrics reads unlabelled samples of the Prometheus text format.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out
}
