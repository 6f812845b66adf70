// sse-w2e: write → event latency over Server-Sent Events, the same client
// for Tandem (GET /v1/events) and PocketBase (GET /api/realtime). It opens
// -subs SSE subscribers of a collection, creates records over REST at
// -rate/s for -d on -writers keep-alive connections, each carrying its send
// time ("benchT", Unix ns, a string) in its data, and times every event
// from that stamp to its arrival. Built and run by scripts/bench-pocketbase.sh;
// loopback only.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	proto := flag.String("proto", "tandem", "tandem or pocketbase")
	addr := flag.String("addr", "127.0.0.1:8080", "server host:port (loopback only)")
	coll := flag.String("collection", "bench", "collection")
	subs := flag.Int("subs", 1, "SSE subscribers")
	rate := flag.Int("rate", 1000, "creates per second")
	dur := flag.Duration("d", 10*time.Second, "how long to write")
	writers := flag.Int("writers", 32, "keep-alive connections carrying the paced writes")
	drain := flag.Duration("drain", 3*time.Second, "longest wait for the events after the last write")
	flag.Parse()
	if h, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(h).IsLoopback() {
		fail("-addr %q: loopback only", *addr)
	}
	base := "http://" + *addr
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *writers + *subs + 4, DisableCompression: true}}

	var writeURL string
	var body func(ts int64) string
	switch *proto {
	case "tandem":
		writeURL = base + "/v1/collections/" + *coll + "/resources"
		body = func(ts int64) string {
			return `{"data":{"title":"bench","benchT":"` + strconv.FormatInt(ts, 10) + `"}}`
		}
	case "pocketbase":
		writeURL = base + "/api/collections/" + *coll + "/records"
		body = func(ts int64) string { return `{"title":"bench","benchT":"` + strconv.FormatInt(ts, 10) + `"}` }
	default:
		fail("-proto %q: use tandem or pocketbase", *proto)
	}

	var (
		mu        sync.Mutex
		lats      []int64
		delivered atomic.Int64
	)
	ready := make(chan error, *subs)
	for range *subs {
		go func() {
			err := subscribe(hc, *proto, base, *coll, ready, func(ts int64) {
				d := time.Now().UnixNano() - ts
				delivered.Add(1)
				mu.Lock()
				lats = append(lats, d)
				mu.Unlock()
			})
			if err != nil {
				ready <- err
			}
		}()
	}
	for range *subs {
		if err := <-ready; err != nil {
			fail("subscribe: %v", err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the subscriptions settle

	total := int(dur.Seconds() * float64(*rate))
	jobs := make(chan struct{}, *writers)
	var (
		wg       sync.WaitGroup
		wmu      sync.Mutex
		wlats    []int64
		werrs    atomic.Int64
		firstErr atomic.Value
	)
	for range *writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				t0 := time.Now()
				resp, err := hc.Post(writeURL, "application/json", strings.NewReader(body(t0.UnixNano())))
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
					}
				}
				if err != nil {
					werrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				d := time.Since(t0).Nanoseconds()
				wmu.Lock()
				wlats = append(wlats, d)
				wmu.Unlock()
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	writeS := time.Since(start).Seconds()
	ok := int64(total) - werrs.Load()
	want := ok * int64(*subs)
	deadline := time.Now().Add(*drain)
	for delivered.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first write error:", e)
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("proto=%s subs=%d rate=%d/s dur=%s writes=%d/%d (%.1fs) write_p50=%.2fms write_p99=%.2fms delivered=%d/%d p50=%.2fms p95=%.2fms p99=%.2fms max=%.2fms\n",
		*proto, *subs, *rate, *dur, ok, total, writeS, q(wlats, 0.5), q(wlats, 0.99), delivered.Load(), want,
		q(lats, 0.5), q(lats, 0.95), q(lats, 0.99), q(lats, 1))
}

// subscribe opens one SSE stream, reports on ready once it is subscribed
// and calls got with every benchT it carries until the stream ends.
func subscribe(hc *http.Client, proto, base, coll string, ready chan<- error, got func(int64)) error {
	u := base + "/v1/events?topic=collections/" + coll + "/resources"
	if proto == "pocketbase" {
		u = base + "/api/realtime"
	}
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	if proto == "tandem" {
		ready <- nil // the stream is subscribed once its headers arrive
	}
	event := ""
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("event:")):
			event = string(bytes.TrimSpace(line[6:]))
		case bytes.HasPrefix(line, []byte("data:")):
			data := line[5:]
			if proto == "pocketbase" && event == "PB_CONNECT" {
				// PocketBase: the first event names the client; subscribe it.
				var c struct {
					ClientID string `json:"clientId"`
				}
				if err := json.Unmarshal(data, &c); err != nil || c.ClientID == "" {
					return fmt.Errorf("PB_CONNECT %q: %v", data, err)
				}
				b, _ := json.Marshal(map[string]any{"clientId": c.ClientID, "subscriptions": []string{coll + "/*"}})
				r, err := hc.Post(base+"/api/realtime", "application/json", bytes.NewReader(b))
				if err != nil {
					return err
				}
				rb, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if r.StatusCode/100 != 2 {
					return fmt.Errorf("POST /api/realtime: %s %s", r.Status, bytes.TrimSpace(rb))
				}
				ready <- nil
				continue
			}
			if ts, ok := benchT(data); ok {
				got(ts)
			}
		case len(line) == 0:
			event = ""
		}
	}
	return sc.Err()
}

// benchT reads the Unix ns after "benchT": in an event's data.
func benchT(b []byte) (int64, bool) {
	i := bytes.Index(b, []byte(`"benchT":`))
	if i < 0 {
		return 0, false
	}
	b = bytes.TrimLeft(b[i+9:], ` "`)
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	v, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return v, err == nil
}

// q is the quantile f of vs in milliseconds (sorting vs), -1 if empty.
func q(vs []int64, f float64) float64 {
	if len(vs) == 0 {
		return -1
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	return float64(vs[int(f*float64(len(vs)-1))]) / 1e6
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sse-w2e: "+format+"\n", args...)
	os.Exit(1)
}
