package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBenchDeliveryWindow(t *testing.T) {
	start := time.Unix(1700000000, 0)
	at := func(d time.Duration) int64 { return start.Add(d).UnixNano() }
	tests := []struct {
		name    string
		last    int64
		publish time.Duration
		want    time.Duration
	}{
		{"OK", at(12 * time.Second), 10 * time.Second, 12 * time.Second},
		{"KeptUp", at(9950 * time.Millisecond), 10 * time.Second, 10 * time.Second},
		{"NoDelivery", 0, 10 * time.Second, 10 * time.Second},
		{"BeforeStart", at(-time.Second), 2 * time.Second, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := deliveryWindow(start, tc.last, tc.publish); got != tc.want {
				t.Errorf("deliveryWindow = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBenchAddDeliveries(t *testing.T) {
	start := time.Now()
	lat := func(ds ...time.Duration) *Histogram {
		var h Histogram
		for _, d := range ds {
			h.Record(d)
		}
		return &h
	}
	pub := publishStats{ok: 100, window: 10 * time.Second}
	tests := []struct {
		name           string
		reports        []WorkerReport
		connected      int
		wantDeliveries uint64
		wantWindowS    float64
		wantPerSec     float64
		wantPubPerSec  float64
		wantMissing    int64
		wantDropped    int
	}{
		{
			// 2,000 deliveries, the last 10 s after the last publish: the
			// whole window is 20 s, twice the publish window.
			name: "Backlog",
			reports: []WorkerReport{
				{Deliveries: 1000, LastDelivery: start.Add(15 * time.Second).UnixNano(), Latency: lat(time.Millisecond)},
				{Deliveries: 1000, LastDelivery: start.Add(20 * time.Second).UnixNano(), Latency: lat(2 * time.Millisecond), Dropped: 1},
			},
			connected: 20, wantDeliveries: 2000, wantWindowS: 20, wantPerSec: 100, wantPubPerSec: 200, wantDropped: 1,
		},
		{
			name:      "KeptUp",
			reports:   []WorkerReport{{Deliveries: 1000, LastDelivery: start.Add(9990 * time.Millisecond).UnixNano(), Latency: lat(time.Millisecond)}},
			connected: 10, wantDeliveries: 1000, wantWindowS: 10, wantPerSec: 100, wantPubPerSec: 100,
		},
		{
			name:      "Missing",
			reports:   []WorkerReport{{Deliveries: 900, LastDelivery: start.Add(11 * time.Second).UnixNano(), Latency: lat(time.Millisecond)}},
			connected: 10, wantDeliveries: 900, wantWindowS: 11, wantPerSec: 81.8, wantPubPerSec: 90, wantMissing: 100,
		},
		{name: "NoSubscribers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Result
			dropped := r.addDeliveries(tc.reports, tc.connected, start, pub)
			if r.Deliveries != tc.wantDeliveries || r.DeliveryWindowS != tc.wantWindowS || r.DeliveriesPerSec != tc.wantPerSec ||
				r.DeliveriesPerSecPublishWindow != tc.wantPubPerSec || r.Missing != tc.wantMissing || dropped != tc.wantDropped {
				t.Errorf("deliveries %d over %v s: %v/s (publish window %v/s), missing %d, dropped %d; want %d over %v s: %v/s (%v/s), missing %d, dropped %d",
					r.Deliveries, r.DeliveryWindowS, r.DeliveriesPerSec, r.DeliveriesPerSecPublishWindow, r.Missing, dropped,
					tc.wantDeliveries, tc.wantWindowS, tc.wantPerSec, tc.wantPubPerSec, tc.wantMissing, tc.wantDropped)
			}
			if tc.connected > 0 && (r.Latency == nil || r.Latency.Count != uint64(len(tc.reports))) {
				t.Errorf("latency %+v, want the %d recorded values merged", r.Latency, len(tc.reports))
			}
		})
	}
}

func TestBenchCPUPerOp(t *testing.T) {
	tests := []struct {
		name string
		cpu  float64
		n    uint64
		want float64
	}{
		{"OK", 2.5, 1_000_000, 2.5},
		{"Rounded", 1, 3, 333333.33},
		{"NoOps", 1, 0, 0},
		{"NoCPU", 0, 10, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cpuPerOpUS(tc.cpu, tc.n); got != tc.want {
				t.Errorf("cpuPerOpUS(%v, %d) = %v, want %v", tc.cpu, tc.n, got, tc.want)
			}
		})
	}
}

// TestBenchRunPacedReplyTimes checks that the reply time of each paced
// operation is what it waited for, and that workers caps the operations in
// flight.
func TestBenchRunPacedReplyTimes(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		delay   time.Duration
	}{
		{"OneInFlight", 1, 5 * time.Millisecond},
		{"FourInFlight", 4, 20 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak atomic.Int64
			st := runPaced(context.Background(), 100, 300*time.Millisecond, tc.workers, func(int) func(int64) (bool, string) {
				return func(n int64) (bool, string) {
					k := inFlight.Add(1)
					defer inFlight.Add(-1)
					for p := peak.Load(); k > p && !peak.CompareAndSwap(p, k); p = peak.Load() {
					}
					time.Sleep(tc.delay)
					if n == 7 {
						return false, "HTTP 500"
					}
					return true, ""
				}
			})
			checkReplies(t, st, 29, tc.delay, map[string]uint64{"HTTP 500": 1})
			if p := peak.Load(); p > int64(tc.workers) {
				t.Errorf("%d operations in flight, want at most %d", p, tc.workers)
			}
		})
	}
}

// TestBenchPublishWSReplyTimes runs publishWS against a server that answers
// every publish frame after a delay, with and without a cap on the
// publishes in flight.
func TestBenchPublishWSReplyTimes(t *testing.T) {
	const delay = 20 * time.Millisecond
	tests := []struct {
		name       string
		publishers int
		wantPeak   int64 // at most; 0: no check
	}{
		{"NoCap", 0, 0},
		{"Capped", 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, peak atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome","connectionId":"x"}`))
				var mu sync.Mutex
				for {
					_, b, err := c.ReadMessage()
					if err != nil {
						return
					}
					var in struct{ Ref string }
					_ = json.Unmarshal(b, &in)
					k := inFlight.Add(1)
					for p := peak.Load(); k > p && !peak.CompareAndSwap(p, k); p = peak.Load() {
					}
					time.AfterFunc(delay, func() {
						inFlight.Add(-1)
						mu.Lock()
						defer mu.Unlock()
						_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"reply","ref":"`+in.Ref+`","ok":`+okUnless(in.Ref == "3")+`}`))
					})
				}
			}))
			defer srv.Close()
			base, _ := url.Parse(srv.URL)
			st := publishWS(context.Background(), base, Common{}, "channels/x/messages", 100, 300*time.Millisecond, tc.publishers)
			checkReplies(t, st, 29, delay, map[string]uint64{"refused": 1})
			if tc.wantPeak > 0 && peak.Load() > tc.wantPeak {
				t.Errorf("%d publishes in flight, want at most %d", peak.Load(), tc.wantPeak)
			}
			if tc.wantPeak == 0 && peak.Load() < 2 {
				t.Errorf("%d publishes in flight without a cap, want several (the schedule is faster than the replies)", peak.Load())
			}
		})
	}
}

func okUnless(refuse bool) string {
	if refuse {
		return "false"
	}
	return "true"
}

// checkReplies checks a publisher's counts and that its reply-time
// percentiles describe ok operations of at least delay each.
func checkReplies(t *testing.T, st publishStats, ok uint64, delay time.Duration, errs map[string]uint64) {
	t.Helper()
	l := st.latency.Summary()
	if st.ok != ok || l.Count != ok {
		t.Errorf("%d ok (%d timed), want %d", st.ok, l.Count, ok)
	}
	for k, v := range errs {
		if st.errors[k] != v {
			t.Errorf("errors %v, want %s=%d", st.errors, k, v)
		}
	}
	d := ms(delay)
	if l.P50MS < d || l.P99MS < l.P50MS || l.MaxMS < l.P99MS || l.P50MS > 10*d {
		t.Errorf("reply times p50 %v p99 %v max %v ms, want p50 ≥ %v ms and ordered", l.P50MS, l.P99MS, l.MaxMS, d)
	}
	if st.window < 290*time.Millisecond {
		t.Errorf("window %v, want at least the 300 ms schedule", st.window)
	}
}
