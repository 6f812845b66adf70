// Paced, open-loop publishers over REST and WebSocket, used by the
// scenarios that drive writes at a fixed rate, and a closed-loop burst
// writer for the ones that write a backlog first.

package bench

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// publishStats is what a paced publisher or writer achieved.
type publishStats struct {
	ok      uint64
	window  time.Duration // first send to last reply
	latency Histogram
	errors  map[string]uint64
}

// runPaced issues rate operations per second for duration, open loop: the
// schedule does not wait for replies, and workers parallel connections
// carry the operations (an operation starts late only when all of them
// are busy). newWorker returns worker i's operation.
func runPaced(ctx context.Context, rate float64, duration time.Duration, workers int, newWorker func(i int) func(n int64) (bool, string)) publishStats {
	jobs := make(chan int64, workers)
	st := publishStats{errors: map[string]uint64{}}
	start := time.Now()
	wait := startWorkers(workers, newWorker, func() (int64, bool) { n, ok := <-jobs; return n, ok }, &st)
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(duration.Seconds() * rate)
	t := time.NewTimer(0)
	defer t.Stop()
	for n := int64(0); n < total && ctx.Err() == nil; n++ {
		if d := time.Until(start.Add(time.Duration(n) * interval)); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
		jobs <- n
	}
	close(jobs)
	last := wait()
	st.ok = st.latency.Count()
	// The window is the schedule's length, or longer if the replies
	// lagged behind it.
	st.window = max(time.Duration(total)*interval, last.Sub(start))
	return st
}

// publishREST publishes to channel over REST, on publishers connections.
func publishREST(ctx context.Context, base *url.URL, c Common, channel string, rate float64, duration time.Duration, publishers int) publishStats {
	path := "/v1/channels/" + url.PathEscape(channel) + "/messages"
	src := newSourceAddrs(base, c.SourceAddrs, 2000)
	return runPaced(ctx, rate, duration, publishers, restPoster(ctx, base, src, path, c.Token))
}

// publishWS publishes to topic with publish frames on one WebSocket
// connection; each publish's latency runs to its reply, matched by ref.
// With publishers > 0, at most that many publishes are unanswered at a
// time: the next one waits for a reply (a paced publish then starts
// late). A publish unanswered for 10 s ends the run.
func publishWS(ctx context.Context, base *url.URL, c Common, topic string, rate float64, duration time.Duration, publishers int) publishStats {
	st := publishStats{errors: map[string]uint64{}}
	ws, err := dialWS(ctx, base, nil, bearer(c.Token))
	if err != nil {
		st.errors["dial"]++
		return st
	}
	defer ws.Close()
	var (
		mu      sync.Mutex
		pending = map[string]time.Time{}
		last    time.Time
		done    = make(chan struct{})
		slots   chan struct{} // nil: no cap
		settled = make(chan struct{}, 1)
	)
	if publishers > 0 {
		slots = make(chan struct{}, publishers)
	}
	go func() {
		defer close(done)
		for {
			bp, err := readFrame(ws)
			if err != nil {
				return
			}
			now := time.Now()
			if frameType(*bp) == "reply" {
				var r struct {
					Ref string `json:"ref"`
					OK  bool   `json:"ok"`
				}
				if json.Unmarshal(*bp, &r) == nil {
					mu.Lock()
					if t0, ok := pending[r.Ref]; ok {
						delete(pending, r.Ref)
						if r.OK {
							st.latency.Record(now.Sub(t0))
							last = now
						} else {
							st.errors["refused"]++
						}
						if slots != nil {
							<-slots
						}
						if len(pending) == 0 {
							select {
							case settled <- struct{}{}:
							default:
							}
						}
					}
					mu.Unlock()
				}
			}
			*bp = (*bp)[:0]
			readPool.Put(bp)
		}
	}()
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(duration.Seconds() * rate)
	var buf []byte
	wait := time.NewTimer(0)
	defer wait.Stop()
publishing:
	for n := int64(0); n < total && ctx.Err() == nil; n++ {
		sleep(ctx, time.Until(start.Add(time.Duration(n)*interval)))
		if slots != nil {
			wait.Reset(10 * time.Second)
			select {
			case slots <- struct{}{}:
			case <-wait.C:
				break publishing
			case <-done:
				break publishing
			case <-ctx.Done():
				break publishing
			}
		}
		ref := strconv.FormatInt(n, 10)
		now := time.Now()
		buf = append(buf[:0], `{"type":"publish","ref":"`...)
		buf = append(buf, ref...)
		buf = append(buf, `","topic":`...)
		buf = strconv.AppendQuote(buf, topic)
		buf = append(buf, `,"data":`...)
		buf = append(buf, payload(n, now)...)
		buf = append(buf, '}')
		mu.Lock()
		pending[ref] = now
		mu.Unlock()
		_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(websocket.TextMessage, buf); err != nil {
			st.errors["transport"]++
			break
		}
	}
	// Wait up to 5 s for the outstanding replies; settled may hold a
	// signal from a moment when none were pending, so check again.
	wait.Reset(5 * time.Second)
waiting:
	for {
		mu.Lock()
		n := len(pending)
		mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-settled:
		case <-wait.C:
			break waiting
		case <-done:
			break waiting
		case <-ctx.Done():
			break waiting
		}
	}
	ws.Close()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(pending) > 0 {
		st.errors["no reply"] += uint64(len(pending))
	}
	st.ok = st.latency.Count()
	st.window = max(time.Duration(total)*interval, last.Sub(start))
	return st
}

// runBurst issues n operations as fast as workers parallel connections
// carry them (closed loop) and reports them as runPaced does; the window
// runs from the start to the last reply.
func runBurst(ctx context.Context, n int64, workers int, newWorker func(i int) func(n int64) (bool, string)) publishStats {
	var next atomic.Int64
	st := publishStats{errors: map[string]uint64{}}
	start := time.Now()
	last := startWorkers(workers, newWorker, func() (int64, bool) {
		k := next.Add(1) - 1
		return k, k < n && ctx.Err() == nil
	}, &st)()
	st.ok = st.latency.Count()
	st.window = max(0, last.Sub(start))
	return st
}

// startWorkers runs workers goroutines, each with its operation
// newWorker(i), taking job numbers from take until it reports none left;
// their latencies and errors go into st. The returned wait blocks until
// all are done and returns the time of the last reply.
func startWorkers(workers int, newWorker func(i int) func(n int64) (bool, string), take func() (int64, bool), st *publishStats) (wait func() time.Time) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		last time.Time
	)
	for i := range workers {
		op := newWorker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local Histogram
			localErrs := map[string]uint64{}
			var end time.Time
			for k, ok := take(); ok; k, ok = take() {
				t0 := time.Now()
				good, kind := op(k)
				end = time.Now()
				if good {
					local.Record(end.Sub(t0))
				} else {
					localErrs[kind]++
				}
			}
			mu.Lock()
			st.latency.Merge(&local)
			for k, v := range localErrs {
				st.errors[k] += v
			}
			if end.After(last) {
				last = end
			}
			mu.Unlock()
		}()
	}
	return func() time.Time {
		wg.Wait()
		return last
	}
}

// restPoster is a worker factory for runPaced and runBurst: worker i
// POSTs {"data": payload(n)} to path over its own connection (from src)
// and counts a 201 as success.
func restPoster(ctx context.Context, base *url.URL, src sourceAddrs, path, token string) func(i int) func(n int64) (bool, string) {
	return func(i int) func(n int64) (bool, string) {
		hc := newHTTPConn(base, src.pick(i))
		return func(n int64) (bool, string) {
			body := append(append([]byte(`{"data":`), payload(n, time.Now())...), '}')
			status, _, err := hc.Do(ctx, "POST", path, "application/json", body, token)
			if err != nil {
				return false, "transport"
			}
			if status != 201 {
				return false, "HTTP " + strconv.Itoa(status)
			}
			return true, ""
		}
	}
}
