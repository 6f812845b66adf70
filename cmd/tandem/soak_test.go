package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// soakSample is one measurement of the server process.
type soakSample struct {
	at         time.Duration
	rss        int64
	goroutines float64
	conns      float64
}

// TestSoak runs the chaos load — WebSocket clients that follow a
// collection and a channel, reset their TCP connections and resume with
// their cursors; resource writers; a channel publisher — plus SSE and
// long-poll followers against a `tandem serve` subprocess for
// $SOAK_DURATION, sampling its VmRSS (/proc) and go_goroutines (/metrics).
// Besides every check of the chaos run (mirrors equal the store, nothing
// lost, duplicated or reordered, gauges back to baseline), it fails when
// the RSS after warm-up grows past the bound or the goroutine count creeps
// up under unchanged load. `make soak` runs it for 10 minutes,
// .ci/steps/60-soak.sh for 60 s; without SOAK_DURATION it is skipped.
func TestSoak(t *testing.T) {
	raw := os.Getenv("SOAK_DURATION")
	if raw == "" {
		t.Skip("soak test: set SOAK_DURATION (make soak runs 10m, .ci/steps/60-soak.sh 60s)")
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 30*time.Second {
		t.Fatalf("SOAK_DURATION=%q: want a duration of at least 30s", raw)
	}
	bin := buildTandem(t)
	// Retention small enough that history and the change log reach their
	// steady size during warm-up, large enough for every resume.
	p := startProc(t, bin, "--data-dir", t.TempDir(), "--change-log-retain", "5000", "--compact-interval", "2s",
		"--channel-history", "1000", "--bookmark-interval", "1s")
	warm := max(15*time.Second, d/5)

	var (
		mu      sync.Mutex
		samples []soakSample
		follows = map[string]int{}
	)
	count := func(kind string, n int) {
		mu.Lock()
		follows[kind] += n
		mu.Unlock()
	}
	start := time.Now()
	during := func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() {
			hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			for {
				rss, err := p.rssBytes()
				if err != nil {
					t.Errorf("rss: %v", err)
					return
				}
				m, err := scrapeMetrics(hc, p.URL)
				if err != nil {
					t.Errorf("metrics: %v", err)
					return
				}
				mu.Lock()
				samples = append(samples, soakSample{at: time.Since(start), rss: rss, goroutines: m["go_goroutines"], conns: m["tandem_ws_connections"]})
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(2 * time.Second):
				}
			}
		})
		for i := 0; i < 4; i++ {
			wg.Go(func() { count("sse", sseFollower(ctx, t, p.testServer, "collections/chaos/resources")) })
		}
		for i := 0; i < 2; i++ {
			wg.Go(func() { count("long-poll", longPoller(ctx, t, p.testServer, "collections/chaos/resources")) })
		}
		wg.Wait()
	}
	runChaos(t, p.testServer, chaosConfig{clients: 60, duration: d, writers: 3, minLife: 200 * time.Millisecond, maxLife: 3 * time.Second, during: during})
	t.Logf("SSE followers received %d events, long-pollers %d", follows["sse"], follows["long-poll"])
	if follows["sse"] == 0 || follows["long-poll"] == 0 {
		t.Errorf("a follower received nothing: %v", follows)
	}
	checkSoakSamples(t, samples, warm)
	p.stopGraceful(t)
}

// checkSoakSamples compares the first third after warm-up with the last
// third: RSS may not grow past early + max(24 MiB, early/4), and the
// goroutine count (same load throughout) past early + max(50, early/4).
func checkSoakSamples(t *testing.T, samples []soakSample, warm time.Duration) {
	t.Helper()
	var steady []soakSample
	for _, s := range samples {
		if s.at >= warm {
			steady = append(steady, s)
		}
	}
	if len(steady) < 6 {
		t.Fatalf("only %d samples after the %v warm-up", len(steady), warm)
	}
	third := len(steady) / 3
	peak := func(ss []soakSample) (rss int64, g float64) {
		for _, s := range ss {
			rss, g = max(rss, s.rss), max(g, s.goroutines)
		}
		return rss, g
	}
	earlyRSS, earlyG := peak(steady[:third])
	lateRSS, lateG := peak(steady[len(steady)-third:])
	rssBound := earlyRSS + max(24<<20, earlyRSS/4)
	gBound := earlyG + max(50, earlyG/4)
	t.Logf("RSS: %.1f MiB after warm-up, %.1f MiB at the end (bound %.1f MiB); goroutines %.0f → %.0f (bound %.0f); %d samples",
		mib(earlyRSS), mib(lateRSS), mib(rssBound), earlyG, lateG, gBound, len(samples))
	if lateRSS > rssBound {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB under steady load (bound %.1f MiB): a leak", mib(earlyRSS), mib(lateRSS), mib(rssBound))
		logSamples(t, samples)
	}
	if lateG > gBound {
		t.Errorf("goroutines grew from %.0f to %.0f under steady load (bound %.0f): a leak", earlyG, lateG, gBound)
		logSamples(t, samples)
	}
}

func logSamples(t *testing.T, samples []soakSample) {
	for _, s := range samples {
		t.Logf("%6.0fs rss %7.1f MiB goroutines %5.0f ws connections %4.0f", s.at.Seconds(), mib(s.rss), s.goroutines, s.conns)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func scrapeMetrics(hc *http.Client, base string) (map[string]float64, error) {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		sb.WriteString(sc.Text())
		sb.WriteByte('\n')
	}
	return parseMetrics(sb.String()), sc.Err()
}

// sseFollower follows topic over SSE, reconnecting every few seconds with
// Last-Event-ID; revisions must be contiguous across reconnects. It
// returns how many events it received.
func sseFollower(ctx context.Context, t *testing.T, s *testServer, topic string) int {
	var lastID string
	var lastRev int64 = -1
	n := 0
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, time.Second+rand.N(3*time.Second))
		req, _ := http.NewRequestWithContext(cctx, "GET", s.URL+"/v1/events?topic="+url.QueryEscape(topic), nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				t.Errorf("SSE: %v", err)
			}
			return n
		}
		if resp.StatusCode != 200 {
			resp.Body.Close()
			cancel()
			t.Errorf("SSE: status %d", resp.StatusCode)
			return n
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var event, id string
		var data strings.Builder
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data.Len() == 0 {
					continue
				}
				b := []byte(data.String())
				data.Reset()
				if err := validateSSE(t, event, b); err != nil {
					t.Errorf("SSE event violates the specs: %v\n%s", err, b)
				}
				if event == "event" {
					var f map[string]any
					_ = json.Unmarshal(b, &f)
					rev := entryFromFrame(f).Rev
					if lastRev >= 0 && rev != lastRev+1 {
						t.Errorf("SSE: revision %d after %d (duplicate, gap or reorder)", rev, lastRev)
					}
					lastRev = rev
					n++
				} else if event == "bookmark" && id != "" {
					if c, err := stream.ParseCursor(id); err == nil && lastRev >= 0 && c.Pos != lastRev {
						t.Errorf("SSE: bookmark at %d, last event %d", c.Pos, lastRev)
					}
				} else if event == "error" {
					t.Errorf("SSE error event: %s", b)
				}
				if id != "" {
					lastID = id
				}
				event, id = "", ""
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data.WriteString(line[6:])
			}
		}
		resp.Body.Close()
		cancel()
	}
	return n
}

// longPoller follows topic by long-polling with its cursor; revisions
// must be contiguous. It returns how many events it received.
func longPoller(ctx context.Context, t *testing.T, s *testServer, topic string) int {
	v := asyncValidator(t)
	var since *string
	var lastRev int64 = -1
	n := 0
	wait := "2s"
	for ctx.Err() == nil {
		r, err := s.Client.PollChangesWithResponse(ctx, &client.PollChangesParams{Topic: topic, Since: since, Wait: &wait})
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("long-poll: %v", err)
			}
			return n
		}
		if r.StatusCode() != 200 {
			t.Errorf("long-poll: %d %s", r.StatusCode(), r.Body)
			return n
		}
		for _, ev := range r.JSON200.Events {
			b, _ := json.Marshal(ev)
			if err := v.ValidateServerFrame(b); err != nil {
				t.Errorf("long-poll event violates spec/asyncapi.yaml: %v", err)
			}
			if rev := ev.Resource.Revision; lastRev >= 0 && rev != lastRev+1 {
				t.Errorf("long-poll: revision %d after %d", rev, lastRev)
			}
			lastRev = ev.Resource.Revision
			n++
		}
		c := r.JSON200.Cursor
		since = &c
		if lastRev < 0 {
			if cur, err := stream.ParseCursor(c); err == nil {
				lastRev = cur.Pos
			}
		}
	}
	return n
}
