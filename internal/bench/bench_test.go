package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		name string
		q    float64
		want time.Duration
	}{
		{"P50", 0.50, 500 * time.Millisecond},
		{"P95", 0.95, 950 * time.Millisecond},
		{"P99", 0.99, 990 * time.Millisecond},
		{"Max", 1, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := h.Quantile(tc.q)
			// Buckets are within 1/64 of the value.
			if got < tc.want || float64(got) > float64(tc.want)*(1+1.0/64) {
				t.Errorf("Quantile(%v) = %v, want %v (+1/64)", tc.q, got, tc.want)
			}
		})
	}
	if h.Max() != time.Second || h.Count() != 1000 || h.Mean() != 500500*time.Microsecond {
		t.Errorf("max %v count %d mean %v", h.Max(), h.Count(), h.Mean())
	}

	t.Run("MergeAndJSON", func(t *testing.T) {
		b, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		var back Histogram
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		var other Histogram
		other.Record(5 * time.Second)
		back.Merge(&other)
		if back.Count() != 1001 || back.Max() != 5*time.Second || back.Quantile(0.5) != h.Quantile(0.5) {
			t.Errorf("merged: count %d max %v p50 %v", back.Count(), back.Max(), back.Quantile(0.5))
		}
	})
	t.Run("Empty", func(t *testing.T) {
		var e Histogram
		if e.Quantile(0.99) != 0 || e.Summary().Count != 0 {
			t.Errorf("empty histogram: %+v", e.Summary())
		}
	})
	t.Run("BucketsRoundTrip", func(t *testing.T) {
		for _, us := range []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 123456, 1 << 40} {
			b := bucketOf(us)
			if hi := bucketHigh(b); hi < us || bucketOf(hi) != b {
				t.Errorf("value %d: bucket %d has high edge %d", us, b, hi)
			}
		}
	})
}

func TestPayloadParsing(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	p := payload(42, now)
	frame := []byte(`{"type":"event","topic":"channels/x/messages","event":"message","cursor":"abc","message":{"channel":"x","data":` + string(p) + `}}`)
	tests := []struct {
		name  string
		frame []byte
		key   string
		want  int64
		ok    bool
	}{
		{"Time", frame, keyT, now.UnixNano(), true},
		{"Seq", frame, keyN, 42, true},
		{"Spaced", []byte(`{"benchT": 17}`), keyT, 17, true},
		{"Missing", []byte(`{"type":"reply"}`), keyT, 0, false},
		{"NotANumber", []byte(`{"benchT":"x"}`), keyT, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := intAfter(tc.frame, tc.key)
			if got != tc.want || ok != tc.ok {
				t.Errorf("intAfter = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	for in, want := range map[string]string{frameOf("event"): "event", `{"ref":"1","type":"reply"}`: "reply", `nonsense`: ""} {
		if got := frameType([]byte(in)); got != want {
			t.Errorf("frameType(%s) = %q, want %q", in, got, want)
		}
	}
}

func frameOf(typ string) string { return `{"type":"` + typ + `","x":1}` }

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.0.0.9:8080", true},
		{"http://localhost:8080", true},
		{"http://[::1]:8080", true},
		{"http://10.0.0.1:8080", false},
		{"http://example.com", false},
		{"ftp://127.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			_, err := CheckLoopback(tc.url)
			if (err == nil) != tc.ok {
				t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}

func TestSourceAddrs(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	s := newSourceAddrs(u, 3, 0)
	got := []string{s.pick(0).String(), s.pick(1).String(), s.pick(2).String(), s.pick(3).String()}
	want := []string{"127.0.0.2:0", "127.0.0.3:0", "127.0.0.4:0", "127.0.0.2:0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("picks %v, want %v", got, want)
	}
	host, _ := url.Parse("http://localhost:1")
	if a := newSourceAddrs(host, 3, 0).pick(0); a != nil {
		t.Errorf("a non-IP target got source address %v", a)
	}
}

func TestHTTPConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(http.StatusCreated)
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		default:
			fmt.Fprintf(w, "%s %s %s %s", r.Method, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := newHTTPConn(u, nil)
	defer c.Close()
	ctx := context.Background()
	tests := []struct {
		name, method, path string
		body               []byte
		status             int
		want               string
	}{
		{"ContentLength", "POST", "/x", []byte(`{"a":1}`), 200, `POST Bearer tok application/json {"a":1}`},
		{"Chunked", "GET", "/chunked", nil, 201, "part0;part1;part2;"},
		{"NoContent", "DELETE", "/empty", nil, 204, ""},
		{"ConnectionClose", "GET", "/close", nil, 200, "bye"},
		{"AfterClose", "GET", "/y", nil, 200, "GET Bearer tok  "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, err := c.Do(ctx, tc.method, tc.path, "application/json", tc.body, "tok")
			if err != nil || status != tc.status || string(body) != tc.want {
				t.Errorf("Do = %d %q %v, want %d %q", status, body, err, tc.status, tc.want)
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	in := "# HELP x\n# TYPE x gauge\nprocess_resident_memory_bytes 1.2345e+07\ngo_goroutines 12\nhttp_requests_total{code=\"200\"} 5\n"
	m, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m["process_resident_memory_bytes"] != 12345000 || m["go_goroutines"] != 12 || len(m) != 2 {
		t.Errorf("parsed %v", m)
	}
}

// fakeTandem is a minimal server speaking the part of Tandem's WebSocket
// protocol the workers use: welcome, subscribe → reply, then events
// stamped like the bench's payloads, sent by broadcast.
type fakeTandem struct {
	mu    sync.Mutex
	conns []*websocket.Conn
}

func (f *fakeTandem) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome","connectionId":"x"}`))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return
		}
		var in struct{ Ref string }
		_ = json.Unmarshal(b, &in)
		f.mu.Lock()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"reply","ref":"`+in.Ref+`","ok":true}`))
		f.conns = append(f.conns, c)
		f.mu.Unlock()
	}
}

func (f *fakeTandem) broadcast(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	msg := []byte(`{"type":"event","message":{"data":` + string(payload(n, time.Now())) + `}}`)
	for _, c := range f.conns {
		_ = c.WriteMessage(websocket.TextMessage, msg)
	}
}

func TestFleetInProcessWorkers(t *testing.T) {
	f := &fakeTandem{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx := context.Background()
	var log bytes.Buffer
	c := Common{URL: srv.URL, Procs: 3, SourceAddrs: 4, Log: &log}
	fl, err := startFleet(ctx, c, 10, 4, "channels/x/messages")
	if err != nil {
		t.Fatal(err)
	}
	if ok, failed, _ := fl.connected(); ok != 10 || failed != 0 || len(fl.hs) != 3 {
		t.Fatalf("connected %d, failed %d over %d workers; want 10, 0, 3", ok, failed, len(fl.hs))
	}
	for n := range int64(5) {
		f.broadcast(n)
	}
	fl.await(ctx, 50, 10*time.Second)
	var total uint64
	reports, err := fl.stop()
	if err != nil {
		t.Fatal(err)
	}
	var lat Histogram
	for _, r := range reports {
		total += r.Deliveries
		lat.Merge(r.Latency)
		if r.Dropped != 0 {
			t.Errorf("worker reported %d dropped connections", r.Dropped)
		}
	}
	if total != 50 || lat.Count() != 50 {
		t.Errorf("deliveries %d (latencies %d), want 50", total, lat.Count())
	}
}
