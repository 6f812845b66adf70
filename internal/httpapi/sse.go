package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// SSEConfig configures GET /v1/events.
type SSEConfig struct {
	// Heartbeat is the comment-line interval; default 15 s.
	Heartbeat time.Duration
	// Bookmark is the bookmark-event interval; default 25 s.
	Bookmark time.Duration
	// QueueBytes bounds the stream's outbound queue; default 1 MiB.
	QueueBytes int
	// Budget, when set, also counts the stream's queue against the
	// server-wide bound on queued bytes (see hub.NewQueueBudget); while it
	// is exhausted app's caps refuse new subscriptions with 503
	// (quota.Caps.QueuedBytes).
	Budget *hub.Budget
	// WriteWait bounds every write of the stream; a client that does not
	// take the bytes in time is a slow consumer. Default 10 s.
	WriteWait time.Duration
}

// sseHandler serves Server-Sent Events with the same frames and cursors
// as the WebSocket API.
type sseHandler struct {
	cfg SSEConfig
	app *app.App
	log *slog.Logger
	// validate checks each outbound frame under --strict (nil: off).
	validate func([]byte) error
	// draining is closed when the server starts shutting down: every
	// stream then ends with an error event carrying its cursor.
	draining <-chan struct{}
	metrics  *streamMetrics
}

// sseSink is the stream's outbound queue. Any goroutine may call
// SlowConsumer and Close, any number of times: each closes its channel
// once.
type sseSink struct {
	q         *hub.Queue
	slow      chan struct{}
	closed    chan struct{}
	slowOnce  sync.Once
	closeOnce sync.Once
	lane      uint64
}

var (
	_ stream.Sink = (*sseSink)(nil)
	_ hub.Laner   = (*sseSink)(nil)
)

func newSSESink(q *hub.Queue) *sseSink {
	return &sseSink{q: q, slow: make(chan struct{}), closed: make(chan struct{}), lane: rand.Uint64()}
}

// Lane implements hub.Laner: the stream's subscriptions share one lane.
func (s *sseSink) Lane() uint64 { return s.lane }

// Push implements stream.Sink.
func (s *sseSink) Push(m *hub.Message) bool {
	if s.q.Push(m) {
		return true
	}
	if s.q.Overflowed() {
		s.SlowConsumer()
	}
	return false
}

// PushWait implements stream.Sink. Errors: hub.ErrQueueClosed, ctx.Err().
func (s *sseSink) PushWait(ctx context.Context, m *hub.Message) error {
	err := s.q.PushWait(ctx, m)
	if err != nil && s.q.Overflowed() {
		s.SlowConsumer()
	}
	return err
}

// Close implements stream.Sink (the hub is shutting down).
func (s *sseSink) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// SlowConsumer implements stream.Sink.
func (s *sseSink) SlowConsumer() { s.slowOnce.Do(func() { close(s.slow) }) }

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topics := q["topic"]
	labels := q.Get("labels")
	snapshot := q.Get("snapshot") == "true"
	resume, resumeIn, resumeName := r.Header.Get("Last-Event-ID"), api.Header, "Last-Event-ID"
	if resume == "" {
		resume, resumeIn, resumeName = q.Get("since"), api.Query, "since"
	}
	fail := func(err error) {
		setRetryHint(w, err)
		writeProblem(w, r, wire.Problem(err))
	}

	// Where each topic resumes, from Last-Event-ID / since: a topic's
	// cursor (one topic), or the composite id of a stream over several.
	var single *stream.Cursor
	var composite stream.Composite
	resumeComposite := resume != "" && stream.IsComposite(resume)
	if resumeComposite {
		c, err := stream.ParseComposite(resume)
		if err != nil {
			fail(wire.ParamError(resumeIn, resumeName, store.ErrorMessage(err)))
			return
		}
		composite = c
	} else if resume != "" {
		cur, err := stream.ParseCursor(resume)
		if err != nil {
			fail(wire.ParamError(resumeIn, resumeName, store.ErrorMessage(err)))
			return
		}
		if len(topics) != 1 {
			fail(wire.ParamError(resumeIn, resumeName, "with several topics, resume with the composite id the stream sent"))
			return
		}
		single = &cur
	}
	covered := 0 // topics the composite cursor holds a position for
	sinceFor := func(topic string) *stream.Cursor {
		if resumeComposite {
			if cur, ok := composite.For(topic); ok {
				covered++
				return &cur
			}
			return nil // a topic the earlier stream did not follow
		}
		return single
	}
	sel, err := store.ParseSelector(labels)
	if err != nil {
		fail(wire.ParamError(api.Query, "labels", store.ErrorMessage(err)))
		return
	}
	flt, err := store.ParseFilter(q.Get("filter"))
	if err != nil {
		fail(wire.ParamError(api.Query, "filter", store.ErrorMessage(err)))
		return
	}
	qb := h.cfg.QueueBytes
	if qb == 0 {
		qb = 1 << 20
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sink := newSSESink(hub.NewQueueBudget(qb, h.cfg.Budget))
	defer func() { sink.q.Close(); sink.q.Discard() }()

	type started struct {
		sub *app.Subscription
		run func(context.Context) error
	}
	var subs []started
	defer func() {
		for _, s := range subs {
			s.sub.Close()
		}
	}()
	// cursors holds each subscription's cursor by its key (the key frames
	// carry); topicOf maps the keys to the topics the id names.
	cursors := map[string]string{}
	topicOf := map[string]string{}
	seen := map[string]bool{}
	principal := principalOf(r.Context())
	cr, err := h.app.Connect(ctx, principal, app.ClientInfo{Transport: "sse", Remote: r.RemoteAddr})
	if err != nil {
		fail(err)
		return
	}
	principal = cr.Principal
	for _, t := range topics {
		topic, err := stream.ParseTopic(t)
		if err != nil {
			fail(wire.ParamError(api.Query, "topic", store.ErrorMessage(err)))
			return
		}
		if seen[t] {
			fail(wire.ParamError(api.Query, "topic", "topic "+t+" is listed twice"))
			return
		}
		seen[t] = true
		// One labels and one filter parameter for every topic: they
		// select within the resource topics.
		since := sinceFor(topic.Path)
		req := app.SubscribeRequest{Topic: topic, Since: since, Snapshot: snapshot && since == nil, Client: r.RemoteAddr, Transport: "sse", Meta: cr.Meta}
		if topic.IsResource() {
			req.Selector, req.Filter = sel, flt
		}
		sub, res, run, err := h.app.Subscribe(ctx, principal, req, sink)
		if err != nil {
			fail(err)
			return
		}
		subs = append(subs, started{sub, run})
		topicOf[sub.Key] = sub.Topic.Path
		if res.Cursor.Epoch != "" {
			cursors[sub.Key] = res.Cursor.String()
		}
	}

	if resumeComposite && covered == 0 {
		fail(wire.ParamError(resumeIn, resumeName, "this composite cursor holds no position for any topic of this stream: resume with the id of a stream over some of these topics"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{w: w, rc: http.NewResponseController(w), wait: h.cfg.WriteWait, events: h.metrics.sseEvents}
	// From here on the stream is open: one open line, one close line
	// with the events written and why it ended.
	access := accesslog.From(r.Context())
	access.Open("sse")
	h.metrics.sseClients.Inc()
	reason := "client-gone"
	defer func() {
		h.metrics.sseClients.Dec()
		if out.err != nil {
			reason = "write-failed"
		}
		access.Close("sse", 0, reason, 0, out.written)
	}()
	if out.wait <= 0 {
		out.wait = 10 * time.Second
	}
	if out.write([]byte(": tandem event stream\nretry: 1000\n\n")) != nil {
		return
	}

	errs := make(chan error, len(subs))
	replays := stream.NewReplays()
	var runs sync.WaitGroup
	defer runs.Wait()
	for _, s := range subs {
		runs.Add(1)
		go func(s started) {
			defer runs.Done()
			if err := replays.Run(ctx, s.run); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}(s)
	}
	defer cancel() // before runs.Wait: stop the replays
	hb := h.cfg.Heartbeat
	if hb == 0 {
		hb = 15 * time.Second
	}
	bm := h.cfg.Bookmark
	if bm == 0 {
		bm = 25 * time.Second
	}
	heartbeat := time.NewTicker(hb)
	defer heartbeat.Stop()
	bookmark := time.NewTicker(bm)
	defer bookmark.Stop()
	// The stream ends with an invalid-token error event when the
	// credentials expire; the client reconnects with fresh ones and
	// Last-Event-ID, losing nothing.
	var expired <-chan time.Time
	if !principal.ExpiresAt.IsZero() {
		t := time.NewTimer(time.Until(principal.ExpiresAt))
		defer t.Stop()
		expired = t.C
	}
	// A stream's cursors count as delivered once written and flushed:
	// next holds them while a batch is being written.
	next := maps.Clone(cursors)
	var buf bytes.Buffer
	var batch []*hub.Message
	for {
		select {
		case <-ctx.Done():
			return
		case <-sink.closed: // the hub is shutting down
			reason = "shutdown"
			h.writeError(out, goingAway, cursorsID(cursors, topicOf))
			return
		case <-h.draining:
			reason = "shutdown"
			h.writeError(out, goingAway, cursorsID(cursors, topicOf))
			return
		case <-expired:
			reason = "token-expired"
			h.writeError(out, wire.Problem(&auth.TokenError{Reason: auth.ReasonExpired}), cursorsID(cursors, topicOf))
			return
		case <-sink.slow:
			reason = "slow-consumer"
			h.writeError(out, wire.NewProblem(wire.KindSlowConsumer, "", nil), cursorsID(cursors, topicOf))
			return
		case err := <-errs:
			reason = "error"
			h.writeError(out, wire.Problem(err), cursorsID(cursors, topicOf))
			return
		case <-heartbeat.C:
			if out.write([]byte(": heartbeat\n\n")) != nil {
				return
			}
		case <-bookmark.C:
			for _, s := range subs {
				// Queued under the subscription's lock: never behind a newer event.
				s.sub.Bookmark(func(pos stream.Cursor) bool {
					return sink.Push(hub.NewEvent(wire.Bookmark(s.sub.Topic.Path, s.sub.Labels, s.sub.Filter, pos), s.sub.Key, pos.String(), 0))
				})
			}
		case <-sink.q.C():
			batch = sink.q.PopAll(batch[:0])
			buf.Reset()
			end := false
			n := 0
			for i, m := range batch {
				if m.Key() != "" && m.Cursor() != "" {
					next[m.Key()] = m.Cursor()
				}
				typ := frameType(m.Bytes())
				if h.validate != nil {
					if err := h.validate(m.Bytes()); err != nil {
						h.log.Error("SSE frame violates spec/asyncapi.yaml", "err", err, "frame", string(m.Bytes()))
					}
				}
				buf.WriteString("event: ")
				buf.WriteString(typ)
				buf.WriteByte('\n')
				if m.Cursor() != "" {
					buf.WriteString("id: ")
					buf.WriteString(cursorsID(next, topicOf))
					buf.WriteByte('\n')
				}
				buf.WriteString("data: ")
				buf.Write(m.Bytes())
				buf.WriteString("\n\n")
				batch[i] = nil
				n++
				if typ == "error" {
					// A subscription ended (e.g. channel reset): end the stream.
					end = true
					break
				}
			}
			clear(batch)
			if out.write(buf.Bytes()) != nil {
				return // blocked or gone: see sseWriter
			}
			out.count(n)
			maps.Copy(cursors, next)
			if end {
				reason = "subscription-ended"
				return
			}
		}
	}
}

// goingAway ends every stream when the server shuts down.
var goingAway = wire.NewProblem(wire.KindUnavailable, "the server is shutting down; reconnect with Last-Event-ID to resume", nil)

// sseWriter writes a stream's bytes, each write under a deadline. A write
// that fails (the client does not read within the deadline, or has gone)
// ends the stream: the client has every event up to the last complete one,
// perhaps part of the next, then the response ends; it reconnects with
// the id of its last complete event and loses nothing.
type sseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	wait time.Duration
	err  error
	// written counts the events written (for the access log); events
	// counts them for the metrics.
	written int64
	events  prometheus.Counter
}

// count records n events written.
func (o *sseWriter) count(n int) {
	o.written += int64(n)
	o.events.Add(float64(n))
}

func (o *sseWriter) write(b []byte) error {
	if o.err != nil {
		return o.err
	}
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.wait))
	if _, err := o.w.Write(b); err != nil {
		o.err = err
		return err
	}
	if err := o.rc.Flush(); err != nil {
		o.err = err
	}
	return o.err
}

// cursorsID is the SSE id: the plain cursor for one topic, else composite.
func cursorsID(cursors, topicOf map[string]string) string {
	if len(topicOf) == 1 {
		for _, c := range cursors {
			return c
		}
		return ""
	}
	if len(cursors) == 0 {
		return "" // e.g. presence topics only: nothing to resume from
	}
	byTopic := make(map[string]string, len(cursors))
	for key, c := range cursors {
		byTopic[topicOf[key]] = c
	}
	return stream.EncodeComposite(byTopic)
}

func (h *sseHandler) writeError(out *sseWriter, p api.Problem, id string) {
	b, _ := json.Marshal(wire.ErrorFrame{Type: "error", Problem: p})
	var buf bytes.Buffer
	buf.WriteString("event: error\n")
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("data: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	if out.write(buf.Bytes()) == nil {
		out.count(1)
	}
}

// frameType reads the "type" member every frame starts with.
func frameType(b []byte) string {
	const prefix = `{"type":"`
	if bytes.HasPrefix(b, []byte(prefix)) {
		rest := b[len(prefix):]
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			return string(rest[:i])
		}
	}
	var head struct{ Type string }
	_ = json.Unmarshal(b, &head)
	return head.Type
}
