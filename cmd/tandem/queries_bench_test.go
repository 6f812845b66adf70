package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkFilteredFanout is 1,000 subscriptions of one collection, each
// with its own filter (over 10 WebSocket connections), while resources
// are written at 500 writes/s; every write matches 20 of the filters.
// It reports the time from the start of the write request to each
// delivery (p50, p99) and the deliveries per second. b.N is the number of
// writes (run with -benchtime 2500x: 5 s).
//
//	go test ./cmd/tandem -run '^$' -bench BenchmarkFilteredFanout -benchtime 2500x
func BenchmarkFilteredFanout(b *testing.B) {
	for _, mode := range []string{"filter", "labels"} {
		b.Run(mode, func(b *testing.B) { filteredFanout(b, mode) })
	}
}

// filteredFanout runs BenchmarkFilteredFanout with distinct filters
// (mode "filter") or, for comparison, label selectors that pick the same
// 20 subscriptions per write (mode "labels"; 50 distinct selectors).
func filteredFanout(b *testing.B, mode string) {
	const conns, perConn, buckets, rate = 10, 100, 50, 500
	s := startServer(b, "--max-subscriptions-per-principal", "0", "--max-conns-per-ip", "0")
	b.Cleanup(s.stop)
	if r, err := s.HTTP.Post(s.URL+"/v1/collections", "application/json", strings.NewReader(`{"name":"bench"}`)); err != nil || r.StatusCode != 201 {
		b.Fatalf("create collection: %v %v", err, r)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for c := range conns {
		bc := dialBench(b, s)
		for i := range perConn {
			n := c*perConn + i
			// Distinct filters: the bucket decides which 20 match a write.
			f := map[string]any{"type": "subscribe", "topic": "collections/bench/resources",
				"filter": fmt.Sprintf(`data.bucket == %d && data.seq != %d && labels.env == "bench"`, n%buckets, -n-1)}
			if mode == "labels" {
				delete(f, "filter")
				f["labels"] = fmt.Sprintf("bucket=b%d,env=bench,!n%d", n%buckets, n) // distinct, like the filters
			}
			bc.roundTrip(b, f)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, raw, err := bc.c.ReadMessage()
				if err != nil {
					return
				}
				now := time.Now()
				var f struct {
					Type     string `json:"type"`
					Resource struct {
						Data struct {
							T int64 `json:"t"`
						} `json:"data"`
					} `json:"resource"`
				}
				if json.Unmarshal(raw, &f) == nil && f.Type == "event" {
					mu.Lock()
					lat = append(lat, now.Sub(time.Unix(0, f.Resource.Data.T)))
					mu.Unlock()
				}
			}
		}()
	}
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		<-tick.C
		body := fmt.Sprintf(`{"data":{"bucket":%d,"seq":%d,"t":%d},"labels":{"env":"bench","bucket":"b%d"}}`, i%buckets, i, time.Now().UnixNano(), i%buckets)
		go func() {
			r, err := http.Post(s.URL+"/v1/collections/bench/resources", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			r.Body.Close()
		}()
	}
	want := b.N * conns * perConn / buckets
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // a benchmark's drain, not a test's wait
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) < want {
		b.Errorf("%d deliveries, want %d", len(lat), want)
	}
	percentiles(b, lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "deliveries/s")
}
