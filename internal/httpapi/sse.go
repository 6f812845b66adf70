package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// SSEConfig configures GET /v1/events.
type SSEConfig struct {
	// Heartbeat is the comment-line interval; default 15 s.
	Heartbeat time.Duration
	// Bookmark is the bookmark-event interval; default 25 s.
	Bookmark time.Duration
	// QueueBytes bounds the stream's outbound queue; default 1 MiB.
	QueueBytes int
}

// sseHandler serves Server-Sent Events with the same frames and cursors
// as the WebSocket API.
type sseHandler struct {
	cfg       SSEConfig
	resources *stream.Resources
	channels  *stream.Channels
	log       *slog.Logger
	// validate checks each outbound frame under --strict (nil: off).
	validate func([]byte) error
}

// sseSink is the stream's outbound queue.
type sseSink struct {
	q      *hub.Queue
	cancel context.CancelFunc
	slow   chan struct{}
	closed chan struct{}
}

func (s *sseSink) Push(m *hub.Message) bool {
	if s.q.Push(m) {
		return true
	}
	s.SlowConsumer()
	return false
}

func (s *sseSink) PushWait(ctx context.Context, m *hub.Message) error {
	for {
		if s.q.Closed() {
			return errors.New("stream closed")
		}
		if s.q.Bytes() <= s.q.MaxBytes()/2 {
			if s.Push(m) {
				return nil
			}
			return errors.New("stream closed")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (s *sseSink) Close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
}

func (s *sseSink) SlowConsumer() {
	select {
	case <-s.slow:
	default:
		close(s.slow)
	}
}

// multiCursor is the SSE id of a stream over several topics: every
// topic's cursor, so one Last-Event-ID resumes them all.
const multiPrefix = "m."

func encodeMulti(cursors map[string]string) string {
	b, _ := json.Marshal(cursors)
	return multiPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func decodeMulti(s string) (map[string]string, bool) {
	if !strings.HasPrefix(s, multiPrefix) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(multiPrefix):])
	if err != nil {
		return nil, false
	}
	var m map[string]string
	if json.Unmarshal(b, &m) != nil || len(m) > 32 {
		return nil, false
	}
	return m, true
}

func (h *sseHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	topics := q["topic"]
	labels := q.Get("labels")
	snapshot := q.Get("snapshot") == "true"
	resume, resumeIn, resumeName := r.Header.Get("Last-Event-ID"), api.Header, "Last-Event-ID"
	if resume == "" {
		resume, resumeIn, resumeName = q.Get("since"), api.Query, "since"
	}
	fail := func(err error) { writeProblem(w, r, ProblemFor(err)) }

	// One cursor per topic from Last-Event-ID / since.
	since := map[string]*stream.Cursor{}
	if resume != "" {
		if m, ok := decodeMulti(resume); ok {
			for t, c := range m {
				cur, err := stream.ParseCursor(c)
				if err != nil {
					fail(paramError(resumeIn, resumeName, store.ErrorMessage(err)))
					return
				}
				since[t] = &cur
			}
		} else {
			cur, err := stream.ParseCursor(resume)
			if err != nil {
				fail(paramError(resumeIn, resumeName, store.ErrorMessage(err)))
				return
			}
			if len(topics) != 1 {
				fail(paramError(resumeIn, resumeName, "with several topics, resume with the composite id the stream sent"))
				return
			}
			since[topics[0]] = &cur
		}
	}
	sel, err := store.ParseSelector(labels)
	if err != nil {
		fail(paramError(api.Query, "labels", store.ErrorMessage(err)))
		return
	}
	qb := h.cfg.QueueBytes
	if qb == 0 {
		qb = 1 << 20
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sink := &sseSink{q: hub.NewQueue(qb), cancel: cancel, slow: make(chan struct{}), closed: make(chan struct{})}
	defer sink.q.Close()

	type started struct {
		sub *stream.Subscription
		run func(context.Context) error
	}
	var subs []started
	unsubscribe := func() {
		for _, s := range subs {
			switch s.sub.Topic.Kind {
			case stream.TopicChannel, stream.TopicPresence:
				h.channels.Unsubscribe(s.sub)
			default:
				h.resources.Unsubscribe(s.sub)
			}
		}
	}
	defer unsubscribe()
	cursors := map[string]string{}
	seen := map[string]bool{}
	principal := principalOf(r.Context())
	for _, t := range topics {
		topic, err := stream.ParseTopic(t)
		if err != nil {
			fail(paramError(api.Query, "topic", store.ErrorMessage(err)))
			return
		}
		if err := principal.Check(auth.ActionRead, topic.Path); err != nil {
			fail(err)
			return
		}
		if seen[t] {
			fail(paramError(api.Query, "topic", "topic "+t+" is listed twice"))
			return
		}
		seen[t] = true
		req := stream.Request{Topic: topic, Since: since[t], Snapshot: snapshot && since[t] == nil}
		var (
			sub *stream.Subscription
			res stream.Result
			run func(context.Context) error
		)
		switch topic.Kind {
		case stream.TopicChannel, stream.TopicPresence:
			req.Snapshot = req.Snapshot && topic.Kind == stream.TopicChannel
			var member *broker.Member
			sub, res, run, err = h.channels.Subscribe(ctx, req, member, sink)
		default:
			req.Selector = sel
			sub, res, run, err = h.resources.Subscribe(ctx, req, sink)
		}
		if err != nil {
			fail(err)
			return
		}
		subs = append(subs, started{sub, run})
		if res.Cursor.Epoch != "" {
			cursors[sub.Key] = res.Cursor.String()
		}
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_, _ = w.Write([]byte(": tandem event stream\nretry: 1000\n\n"))
	_ = rc.Flush()

	errs := make(chan error, len(subs))
	for _, s := range subs {
		go func(s started) {
			if err := s.run(ctx); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}(s)
	}
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
	single := len(topics) == 1
	// The stream ends with an invalid-token error event when the
	// credentials expire; the client reconnects with fresh ones and
	// Last-Event-ID, losing nothing.
	var expired <-chan time.Time
	if !principal.ExpiresAt.IsZero() {
		t := time.NewTimer(time.Until(principal.ExpiresAt))
		defer t.Stop()
		expired = t.C
	}
	var buf bytes.Buffer
	var batch []*hub.Message
	for {
		select {
		case <-ctx.Done():
			return
		case <-sink.closed:
			return
		case <-expired:
			h.writeError(w, rc, ProblemFor(&auth.TokenError{Reason: auth.ReasonExpired}), cursorsID(cursors, single))
			return
		case <-sink.slow:
			h.writeError(w, rc, api.Problem{Type: ProblemBase + "slow-consumer", Title: "Slow consumer", Status: http.StatusTooManyRequests}, cursorsID(cursors, single))
			return
		case err := <-errs:
			h.writeError(w, rc, ProblemFor(err), cursorsID(cursors, single))
			return
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
			_ = rc.Flush()
		case <-bookmark.C:
			for _, s := range subs {
				// Queued under the subscription's lock: never behind a newer event.
				s.sub.Bookmark(h.resources.Feed, func(pos stream.Cursor) bool {
					b, _ := json.Marshal(stream.BookmarkFrame{Type: "bookmark", Topic: s.sub.Topic.Path, Labels: s.sub.Labels, Cursor: pos.String()})
					return sink.Push(hub.NewEvent(b, s.sub.Key, pos.String(), 0))
				})
			}
		case <-sink.q.C():
			batch = sink.q.PopAll(batch[:0])
			buf.Reset()
			for i, m := range batch {
				if m.Key() != "" && m.Cursor() != "" {
					cursors[m.Key()] = m.Cursor()
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
					buf.WriteString(cursorsID(cursors, single))
					buf.WriteByte('\n')
				}
				buf.WriteString("data: ")
				buf.Write(m.Bytes())
				buf.WriteString("\n\n")
				batch[i] = nil
				if typ == "error" {
					// A subscription ended (e.g. channel reset): end the stream.
					_, _ = w.Write(buf.Bytes())
					_ = rc.Flush()
					return
				}
			}
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			_ = rc.Flush()
		}
	}
}

// cursorsID is the SSE id: the plain cursor for one topic, else composite.
func cursorsID(cursors map[string]string, single bool) string {
	if single {
		for _, c := range cursors {
			return c
		}
		return ""
	}
	return encodeMulti(cursors)
}

func (h *sseHandler) writeError(w http.ResponseWriter, rc *http.ResponseController, p api.Problem, id string) {
	b, _ := json.Marshal(stream.ErrorFrame{Type: "error", Problem: p})
	var buf bytes.Buffer
	buf.WriteString("event: error\n")
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("data: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	_, _ = w.Write(buf.Bytes())
	_ = rc.Flush()
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
