package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// WorkerSpec tells a worker which WebSocket connections to open. Workers
// run in the bench process or, for large N, in child processes (`tandem
// bench worker`), because one process may hold at most `ulimit -n`
// sockets.
type WorkerSpec struct {
	URL string `json:"url"`
	// Count connections, dialled Concurrency at a time.
	Count       int `json:"count"`
	Concurrency int `json:"concurrency"`
	// SourceAddrs loopback source addresses, starting at SourceOffset.
	SourceAddrs  int `json:"sourceAddrs"`
	SourceOffset int `json:"sourceOffset"`
	// Topic, if set, is subscribed on every connection; its event frames
	// are timed from the benchT stamp in their payload.
	Topic string `json:"topic,omitempty"`
	// Token, if set, is sent as a bearer token on the upgrade.
	Token string `json:"token,omitempty"`
	// Presence, if set, is a channel every connection joins as a member
	// (the presence scenario): it subscribes to the channel's presence
	// topic, then to its messages topic (which joins), and counts the
	// members it sees. Topic is ignored.
	Presence string `json:"presence,omitempty"`
	// Members is the size of the full member set (Presence).
	Members int `json:"members,omitempty"`
	// JoinWindow spreads the connections' starts evenly (Presence).
	JoinWindow time.Duration `json:"joinWindow,omitempty"`
}

// workerCmd is a line from the coordinator.
type workerCmd struct {
	Cmd  string     `json:"cmd"` // "start", "poll" or "stop"
	Spec WorkerSpec `json:"spec"`
}

// WorkerReport is a line from a worker: "ready" after connecting,
// "progress" (Deliveries so far) after each poll, "result" after stop.
type WorkerReport struct {
	Event string `json:"event"`
	// Connected and Failed count dials; DialStart and DialEnd (Unix ns)
	// bracket them; Connect times each successful dial to its welcome.
	Connected int        `json:"connected"`
	Failed    int        `json:"failed"`
	FirstErr  string     `json:"firstErr,omitempty"`
	DialStart int64      `json:"dialStart"`
	DialEnd   int64      `json:"dialEnd"`
	Connect   *Histogram `json:"connect,omitempty"`
	// Deliveries counts timed event frames; Latency times them; Dropped
	// counts connections that closed before stop. LastDelivery is when
	// the latest of them arrived (Unix ns, 0 before the first): workers
	// run on the coordinator's machine, so it shares their clock.
	Deliveries   uint64     `json:"deliveries"`
	LastDelivery int64      `json:"lastDelivery,omitempty"`
	Latency      *Histogram `json:"latency,omitempty"`
	Dropped      int        `json:"dropped"`
	Err          string     `json:"err,omitempty"`
	// Presence: Full counts the members that have seen the full member
	// set (also in progress reports), FullAt (Unix ns) is when the last of
	// them did; PresenceFrames and PresenceMembers count the presence
	// frames received and the member entries they listed.
	Full            int    `json:"full,omitempty"`
	FullAt          int64  `json:"fullAt,omitempty"`
	PresenceFrames  uint64 `json:"presenceFrames,omitempty"`
	PresenceMembers uint64 `json:"presenceMembers,omitempty"`
}

// RunWorker is the worker side of the coordinator protocol: it reads a
// start command (one JSON line) from in, opens the connections, writes a
// ready report to out, keeps reading and timing events until a stop
// command, EOF on in, or ctx ends, and writes the result report.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	enc := json.NewEncoder(out)
	var cmd workerCmd
	if !sc.Scan() {
		return errors.New("bench worker: no start command on stdin")
	}
	if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil || cmd.Cmd != "start" {
		return fmt.Errorf("bench worker: bad start command %q", sc.Text())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := startWorker(ctx, cmd.Spec)
	if err != nil {
		_ = enc.Encode(WorkerReport{Event: "ready", Err: err.Error()})
		return err
	}
	if err := enc.Encode(w.readyReport()); err != nil {
		w.stop()
		return err
	}
	var encMu sync.Mutex
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for sc.Scan() {
			var c workerCmd
			if json.Unmarshal(sc.Bytes(), &c) != nil {
				continue
			}
			switch c.Cmd {
			case "stop":
				return
			case "poll":
				encMu.Lock()
				_ = enc.Encode(WorkerReport{Event: "progress", Deliveries: w.progress(), Full: w.fullCount()})
				encMu.Unlock()
			}
		}
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
	}
	r := w.stop()
	encMu.Lock()
	defer encMu.Unlock()
	return enc.Encode(r)
}

// worker holds one worker's connections.
type worker struct {
	spec  WorkerSpec
	conns []*websocket.Conn
	ready WorkerReport

	stopping atomic.Bool
	dropped  atomic.Int64
	wg       sync.WaitGroup

	received atomic.Uint64 // deliveries so far, for progress polls
	last     atomic.Int64  // Unix ns of the latest delivery

	mu         sync.Mutex
	deliveries uint64
	latency    Histogram
	joinHist   Histogram // presence: dial to join reply

	presence *presenceWorker // nil unless spec.Presence
}

// progress is what the coordinator awaits: deliveries, or for presence
// the members that have seen the full set.
func (w *worker) progress() uint64 {
	if w.presence != nil {
		return uint64(w.fullCount())
	}
	return w.received.Load()
}

func (w *worker) fullCount() int {
	if w.presence == nil {
		return 0
	}
	return int(w.presence.full.Load())
}

// startWorker dials spec.Count connections and starts their readers.
// Dial failures are counted, not fatal.
func startWorker(ctx context.Context, spec WorkerSpec) (*worker, error) {
	base, err := url.Parse(spec.URL)
	if err != nil {
		return nil, err
	}
	if spec.Concurrency < 1 {
		spec.Concurrency = 64
	}
	if spec.Presence != "" {
		return startPresenceWorker(ctx, base, spec)
	}
	w := &worker{spec: spec, conns: make([]*websocket.Conn, spec.Count)}
	src := newSourceAddrs(base, spec.SourceAddrs, spec.SourceOffset)
	header := bearer(spec.Token)
	var (
		next     atomic.Int64
		mu       sync.Mutex
		connect  Histogram
		failed   int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range min(spec.Concurrency, spec.Count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local Histogram
			defer func() {
				mu.Lock()
				connect.Merge(&local)
				mu.Unlock()
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= spec.Count || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				c, err := dialWS(ctx, base, src.pick(i), header)
				if err == nil && spec.Topic != "" {
					if err = subscribe(c, spec.Topic); err != nil {
						c.Close()
					}
				}
				if err != nil {
					mu.Lock()
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
					mu.Unlock()
					continue
				}
				local.Record(time.Since(t0))
				w.conns[i] = c
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	w.ready = WorkerReport{Event: "ready", Connected: int(connect.Count()), Failed: failed, FirstErr: firstErr,
		DialStart: start.UnixNano(), DialEnd: end.UnixNano(), Connect: &connect}
	for _, c := range w.conns {
		if c != nil {
			w.wg.Add(1)
			go w.read(c)
		}
	}
	return w, nil
}

func bearer(token string) map[string][]string {
	if token == "" {
		return nil
	}
	return map[string][]string{"Authorization": {"Bearer " + token}}
}

func (w *worker) readyReport() WorkerReport { return w.ready }

// read times every event frame of one connection until it closes.
// Latencies are gathered locally and merged in batches to keep the
// shared lock cold.
func (w *worker) read(c *websocket.Conn) {
	defer w.wg.Done()
	var (
		local      Histogram
		deliveries uint64
	)
	flush := func() {
		w.mu.Lock()
		w.latency.Merge(&local)
		w.deliveries += deliveries
		w.mu.Unlock()
		local, deliveries = Histogram{}, 0
	}
	defer flush()
	for {
		bp, err := readFrame(c)
		if err != nil {
			if !w.stopping.Load() {
				w.dropped.Add(1)
			}
			return
		}
		now := time.Now()
		if t, ok := intAfter(*bp, keyT); ok && frameType(*bp) == "event" {
			local.Record(now.Sub(time.Unix(0, t)))
			deliveries++
			w.received.Add(1)
			w.storeLast(now.UnixNano())
			if deliveries >= 256 {
				flush()
			}
		}
		*bp = (*bp)[:0]
		readPool.Put(bp)
	}
}

// storeLast raises w.last to t; readers race, so it only moves forward.
func (w *worker) storeLast(t int64) {
	for {
		old := w.last.Load()
		if t <= old || w.last.CompareAndSwap(old, t) {
			return
		}
	}
}

// stop closes every connection and returns the result report.
func (w *worker) stop() WorkerReport {
	w.stopping.Store(true)
	for _, c := range w.conns {
		if c != nil {
			_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.Close()
		}
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.ready
	r.Event = "result"
	r.Deliveries = w.deliveries
	r.LastDelivery = w.last.Load()
	lat := w.latency
	r.Latency = &lat
	r.Dropped = int(w.dropped.Load())
	if p := w.presence; p != nil {
		r.Full, r.FullAt = int(p.full.Load()), p.fullAt.Load()
		r.PresenceFrames, r.PresenceMembers = p.frames.Load(), p.entries.Load()
	}
	return r
}
