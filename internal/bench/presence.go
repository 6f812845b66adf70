// The presence scenario: N members join one channel within a window,
// every one of them following the channel's presence.

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// PresenceOptions configures Presence.
type PresenceOptions struct {
	Common
	// Members joining the channel, one WebSocket connection each;
	// default 5,000.
	Members int
	// JoinWindow spreads the connections' starts evenly over this long;
	// default 5 s.
	JoinWindow time.Duration
	// Channel; default a fresh bench-presence-… name.
	Channel string
	// Settle is the longest wait, after the last join, for every member to
	// see the full member set; default 30 s.
	Settle time.Duration
	// Concurrency is the number of joins in flight over all workers;
	// default 1,024.
	Concurrency int
}

// Presence opens Members WebSocket connections within JoinWindow; each
// subscribes to channels/{ch}/presence and then to channels/{ch}/messages,
// which joins the channel's presence. It reports the joins that succeeded
// or failed and their latency (from the dial to the join's reply), the
// presence frames received, how long until every member had seen the full
// member set, and how long walking GET /v1/channels/{ch}/presence page by
// page takes once everyone is in.
func Presence(ctx context.Context, srv *Server, o PresenceOptions) (Result, error) {
	o.Members = defInt(o.Members, 5000)
	o.JoinWindow = defDur(o.JoinWindow, 5*time.Second)
	o.Settle = defDur(o.Settle, 30*time.Second)
	o.Concurrency = defInt(o.Concurrency, 1024)
	if o.Channel == "" {
		o.Channel = "bench-presence-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	base, err := url.Parse(o.URL)
	if err != nil {
		return Result{}, err
	}
	res := Result{Scenario: "presence", Params: map[string]any{"members": o.Members, "joinWindow": o.JoinWindow.String(),
		"channel": o.Channel, "concurrency": o.Concurrency}}
	o.logf("presence: %d members joining %s within %s", o.Members, o.Channel, o.JoinWindow)
	before, _ := srv.Stats(ctx)
	t0 := time.Now()
	f, err := startPresenceFleet(ctx, o)
	if err != nil {
		return res, err
	}
	joined, failed, firstErr := f.connected()
	res.Connections, res.Processes = joined, len(f.hs)
	res.JoinLatency = ptr(f.connectLatency().Summary())
	res.addError("join", uint64(failed))
	if failed > 0 {
		o.logf("presence: %d joins failed; first error: %s", failed, firstErr)
	}
	window := f.dialWindow()
	o.logf("presence: %d joined in %s; waiting up to %s for every member to see all %d", joined, window.Round(time.Millisecond), o.Settle, joined)
	f.await(ctx, uint64(joined), o.Settle)
	walks := []int{100, 1000}
	for _, limit := range walks {
		w := walkPresence(ctx, base, o.Token, o.Channel, limit)
		res.PresenceWalks = append(res.PresenceWalks, w)
		if w.Err != "" {
			res.addError("presence walk", 1)
			o.logf("presence: walk with limit %d: %s", limit, w.Err)
		} else if w.Members != joined {
			res.addError("presence walk members", 1)
			o.logf("presence: walk with limit %d listed %d members, want %d", limit, w.Members, joined)
		}
	}
	after, serr := srv.Stats(ctx)
	sampled := time.Since(t0).Seconds()
	reports, ferr := f.stop()
	var full int
	var fullAt, lastJoin, firstDial int64
	var dropped int
	for i, r := range reports {
		full += r.Full
		res.PresenceFrames += r.PresenceFrames
		res.PresenceMembers += r.PresenceMembers
		fullAt = max(fullAt, r.FullAt)
		lastJoin = max(lastJoin, r.DialEnd)
		if i == 0 || r.DialStart < firstDial {
			firstDial = r.DialStart
		}
		dropped += r.Dropped
	}
	res.DurationS = round3(window.Seconds())
	res.MembersFull = full
	if full > 0 && fullAt > 0 {
		res.FullSetS = round3(time.Duration(fullAt - firstDial).Seconds())
		res.FullSetAfterLastJoinMS = round3(float64(fullAt-lastJoin) / 1e6)
	}
	if missing := joined - full; missing > 0 {
		res.addError("members without the full set", uint64(missing))
	}
	res.addError("dropped connections", uint64(dropped))
	if serr == nil && before.RSSBytes > 0 {
		res.Server = serverReport(before, after, joined, before, sampled)
	}
	return res, ferr
}

// PresenceWalk is one full paginated read of a channel's presence.
type PresenceWalk struct {
	Limit   int     `json:"limit"`
	Pages   int     `json:"pages"`
	Members int     `json:"members"`
	MS      float64 `json:"ms"`
	Err     string  `json:"err,omitempty"`
}

// walkPresence follows nextPageToken through every page of channel's
// presence, limit members a page.
func walkPresence(ctx context.Context, base *url.URL, token, channel string, limit int) PresenceWalk {
	w := PresenceWalk{Limit: limit}
	c := newHTTPConn(base, nil)
	defer c.Close()
	path := "/v1/channels/" + url.PathEscape(channel) + "/presence?limit=" + strconv.Itoa(limit)
	page := ""
	start := time.Now()
	for {
		q := path
		if page != "" {
			q += "&pageToken=" + url.QueryEscape(page)
		}
		status, body, err := c.Do(ctx, "GET", q, "", nil, token)
		if err != nil || status != 200 {
			w.Err = fmt.Sprintf("page %d: HTTP %d %v %.200s", w.Pages+1, status, err, body)
			return w
		}
		var p struct {
			Members       []json.RawMessage `json:"members"`
			NextPageToken string            `json:"nextPageToken"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			w.Err = err.Error()
			return w
		}
		w.Pages++
		w.Members += len(p.Members)
		if p.NextPageToken == "" {
			break
		}
		page = p.NextPageToken
	}
	w.MS = round3(float64(time.Since(start).Microseconds()) / 1000)
	return w
}

// startPresenceFleet spreads the members over the workers, each pacing
// its share over the join window.
func startPresenceFleet(ctx context.Context, o PresenceOptions) (*fleet, error) {
	c := o.Common
	spec := WorkerSpec{Presence: o.Channel, Members: o.Members, JoinWindow: o.JoinWindow}
	return startFleetSpec(ctx, c, o.Members, perWorker(o.Concurrency, c, o.Members), spec)
}

// presenceWorker is the worker side of the presence scenario: it owns the
// member IDs seen so far (interned to small integers) and the counters.
type presenceWorker struct {
	members int // the full set's size

	mu  sync.RWMutex
	ids map[string]int

	frames, entries atomic.Uint64
	full            atomic.Int64
	fullAt          atomic.Int64 // Unix ns of the latest member to see the full set
}

func (p *presenceWorker) intern(id []byte) int {
	p.mu.RLock()
	i, ok := p.ids[string(id)]
	p.mu.RUnlock()
	if ok {
		return i
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, ok := p.ids[string(id)]; ok {
		return i
	}
	i = len(p.ids)
	p.ids[string(id)] = i
	return i
}

// memberSet is one connection's view of the channel's members.
type memberSet struct {
	bits []uint64
	n    int
}

func (s *memberSet) set(i int, on bool) {
	w := i / 64
	for w >= len(s.bits) {
		s.bits = append(s.bits, 0)
	}
	m := uint64(1) << (i % 64)
	switch was := s.bits[w]&m != 0; {
	case on && !was:
		s.bits[w] |= m
		s.n++
	case !on && was:
		s.bits[w] &^= m
		s.n--
	}
}

func (s *memberSet) reset() {
	clear(s.bits)
	s.n = 0
}

var (
	keyAction = []byte(`"action":"`)
	keyID     = []byte(`"id":"`) // members carry no meta here, so only member ids match
)

// apply folds one presence frame into s without decoding the frame:
// frames with thousands of members reach thousands of connections, so it
// only scans for the action and each member's id (IDs need no JSON
// unescaping: the bench's members are anonymous, their IDs connection
// IDs).
func (p *presenceWorker) apply(s *memberSet, frame []byte) {
	i := bytes.Index(frame, keyAction)
	if i < 0 {
		return
	}
	rest := frame[i+len(keyAction):]
	action := rest[:max(0, bytes.IndexByte(rest, '"'))]
	on := true
	switch string(action) {
	case "state":
		s.reset()
	case "leave":
		on = false
	}
	p.frames.Add(1)
	for {
		j := bytes.Index(rest, keyID)
		if j < 0 {
			return
		}
		rest = rest[j+len(keyID):]
		k := bytes.IndexByte(rest, '"')
		if k < 0 {
			return
		}
		s.set(p.intern(rest[:k]), on)
		p.entries.Add(1)
		rest = rest[k:]
	}
}

// joinMember runs one member's connection: it subscribes c to the
// channel's presence and then joins the channel, reports the join's
// outcome on joined, and folds the presence frames until c closes.
func (w *worker) joinMember(c *websocket.Conn, t0 time.Time, joined func(error)) {
	defer w.wg.Done()
	p := w.presence
	ch := w.spec.Presence
	send := func(ref, topic string) error {
		b, _ := json.Marshal(map[string]any{"type": "subscribe", "ref": ref, "topic": topic})
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return c.WriteMessage(websocket.TextMessage, b)
	}
	if err := send("p", "channels/"+ch+"/presence"); err != nil {
		joined(err)
		return
	}
	if err := send("j", "channels/"+ch+"/messages"); err != nil {
		joined(err)
		return
	}
	var (
		set      memberSet
		done     bool // the join's reply came
		complete bool // this member has seen the full set
	)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // until the join's reply
	for {
		bp, err := readFrame(c)
		if err != nil {
			if !done {
				joined(fmt.Errorf("before the join's reply: %w", err))
			} else if !w.stopping.Load() {
				w.dropped.Add(1)
			}
			return
		}
		b := *bp
		switch frameType(b) {
		case "presence":
			p.apply(&set, b)
			if !complete && set.n >= p.members {
				complete = true
				p.full.Add(1)
				now := time.Now().UnixNano()
				for {
					old := p.fullAt.Load()
					if now <= old || p.fullAt.CompareAndSwap(old, now) {
						break
					}
				}
			}
		case "reply":
			if bytes.Contains(b, []byte(`"ref":"j"`)) {
				done = true
				_ = c.SetReadDeadline(time.Time{})
				if bytes.Contains(b, []byte(`"ok":true`)) {
					w.joinLatency(time.Since(t0))
					joined(nil)
				} else {
					joined(fmt.Errorf("join refused: %.300s", b))
				}
			} else if !bytes.Contains(b, []byte(`"ok":true`)) {
				done = true
				joined(fmt.Errorf("presence subscribe refused: %.300s", b))
			}
		}
		*bp = (*bp)[:0]
		readPool.Put(bp)
	}
}

// startPresenceWorker dials spec.Count members, starting them evenly over
// spec.JoinWindow with at most spec.Concurrency joins in flight, and
// returns once every join has its outcome. Failures are counted, not
// fatal.
func startPresenceWorker(ctx context.Context, base *url.URL, spec WorkerSpec) (*worker, error) {
	w := &worker{spec: spec, conns: make([]*websocket.Conn, spec.Count),
		presence: &presenceWorker{members: spec.Members, ids: map[string]int{}}}
	src := newSourceAddrs(base, spec.SourceAddrs, spec.SourceOffset)
	header := bearer(spec.Token)
	var (
		mu       sync.Mutex
		failed   int
		firstErr string
		joins    sync.WaitGroup
		slots    = make(chan struct{}, spec.Concurrency)
	)
	fail := func(err error) {
		mu.Lock()
		failed++
		if firstErr == "" {
			firstErr = err.Error()
		}
		mu.Unlock()
	}
	start := time.Now()
	var last atomic.Int64
	for i := range spec.Count {
		at := start.Add(time.Duration(int64(spec.JoinWindow) * int64(i) / int64(max(1, spec.Count))))
		if d := time.Until(at); d > 0 {
			sleep(ctx, d)
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		joins.Add(1)
		go func() {
			var once sync.Once
			joined := func(err error) {
				once.Do(func() {
					if err != nil {
						fail(err)
					} else {
						now := time.Now().UnixNano()
						for {
							old := last.Load()
							if now <= old || last.CompareAndSwap(old, now) {
								break
							}
						}
					}
					<-slots
					joins.Done()
				})
			}
			t0 := time.Now()
			c, err := dialWS(ctx, base, src.pick(i), header)
			if err != nil {
				joined(err)
				return
			}
			w.conns[i] = c
			w.wg.Add(1)
			w.joinMember(c, t0, joined)
			joined(errors.New("connection ended before joining"))
		}()
	}
	joins.Wait()
	end := time.Unix(0, last.Load())
	if last.Load() == 0 {
		end = time.Now()
	}
	w.ready = WorkerReport{Event: "ready", Connected: int(w.joinHist.Count()), Failed: failed, FirstErr: firstErr,
		DialStart: start.UnixNano(), DialEnd: end.UnixNano(), Connect: &w.joinHist}
	return w, nil
}

// joinLatency records one successful join.
func (w *worker) joinLatency(d time.Duration) {
	w.mu.Lock()
	w.joinHist.Record(d)
	w.mu.Unlock()
}
