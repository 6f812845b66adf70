package webhook_test

// Webhook delivery end to end below the REST edge: app's use cases and
// runner, a real SQLite store, the real feed, hub and memory broker, this
// package's sender, and a real HTTP receiver on loopback that checks
// every signature and every body against spec/openapi.yaml.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/memory"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlite"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/webhook"
	"github.com/tandemhq/tandem/internal/wire"
)

var everyone = auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()}

type tlog struct{ t *testing.T }

func (w tlog) Write(b []byte) (int, error) { w.t.Log(strings.TrimSpace(string(b))); return len(b), nil }

type rig struct {
	a  *app.App
	st *sqlite.Store
}

// newRig runs an App with fast webhook timings; opts override them.
func newRig(t *testing.T, tweak func(*app.WebhookOptions)) *rig {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wh.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	frames := wire.Frames{}
	h := hub.New(hub.Options{})
	feed, err := stream.NewFeed(ctx, st, h, stream.FeedOptions{Frames: frames, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	br := memory.New(memory.Options{})
	channels := &stream.Channels{Broker: br, Hub: h, Frames: frames}
	sender := webhook.NewSender(webhook.Options{AllowPrivate: true})
	opts := app.WebhookOptions{Sender: sender, Encoder: frames, Timeout: 2 * time.Second,
		RetryMin: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond, LeaseTTL: 600 * time.Millisecond, PollWait: 300 * time.Millisecond}
	if tweak != nil {
		tweak(&opts)
	}
	a := app.New(st, app.Options{Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Realtime: app.Realtime{Resources: &stream.Resources{Store: st, Hub: h, Feed: feed, Frames: frames}, Channels: channels,
			Namespaces: app.Namespaces{Default: app.ChannelOptions{ClientPublish: true, History: broker.HistoryOptions{Size: 1000, TTL: time.Hour}}}},
		Webhooks: opts,
	})
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); _ = br.Run(runCtx, channels) }()
	go func() { defer wg.Done(); _ = feed.Run(runCtx) }()
	go func() { defer wg.Done(); _ = a.RunWebhooks(runCtx) }()
	t.Cleanup(func() { stop(); wg.Wait(); br.Close(); sender.Close() })
	if _, err := a.CreateCollection(ctx, everyone, "orders", nil); err != nil {
		t.Fatal(err)
	}
	return &rig{a: a, st: st}
}

// receiver is a webhook endpoint that verifies signatures and bodies and
// records every request; answer decides the status of each request.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	spec   *specval.OpenAPI
	mu     sync.Mutex
	secret []string // keys that must verify (any one of them)
	got    []request
	answer func(n int) int
}

type request struct {
	id        string
	body      []byte
	status    int
	signature string
	ts        string
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	spec, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, spec: spec, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id, ts, sig := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := verify(r.secret, id, ts, sig, body); err != nil {
		r.t.Errorf("request %s: %v", id, err)
	}
	if req.Header.Get("content-type") != "application/json" {
		r.t.Errorf("content-type %q", req.Header.Get("content-type"))
	}
	status := 204
	if r.answer != nil {
		status = r.answer(len(r.got))
	}
	r.got = append(r.got, request{id: id, body: body, status: status, signature: sig, ts: ts})
	w.WriteHeader(status)
}

// verify checks a Standard Webhooks signature with any of secrets.
func verify(secrets []string, id, ts, sig string, body []byte) error {
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil {
			return err
		}
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s.%s.", id, ts)
		m.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		for _, got := range strings.Fields(sig) {
			if got == want {
				return nil
			}
		}
	}
	return fmt.Errorf("signature %q does not verify", sig)
}

func (r *receiver) setSecrets(s ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

// acked returns the events of the acknowledged requests, in order,
// checking each body against the spec.
func (r *receiver) events(t *testing.T, ackedOnly bool) []wire.EventFrame {
	t.Helper()
	var out []wire.EventFrame
	prev := ""
	for _, q := range r.requests() {
		retry := q.id == prev
		prev = q.id
		if ackedOnly && (q.status < 200 || q.status > 299) || !ackedOnly && retry {
			continue
		}
		var evs []wire.EventFrame
		if bytes.HasPrefix(q.body, []byte("[")) {
			if err := r.spec.ValidateSchema("WebhookBatch", q.body); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(q.body, &evs); err != nil {
				t.Fatal(err)
			}
		} else {
			var ev wire.EventFrame
			if err := json.Unmarshal(q.body, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type != "event" {
				continue
			}
			if err := r.spec.ValidateSchema("StreamEvent", q.body); err != nil {
				t.Fatal(err)
			}
			evs = []wire.EventFrame{ev}
		}
		if id := evs[len(evs)-1].Cursor; id != q.id {
			t.Fatalf("webhook-id %q, want the last event's cursor %q", q.id, id)
		}
		out = append(out, evs...)
	}
	return out
}

// waitFor polls cond (the runner is asynchronous) until it holds or 20 s
// pass.
// failThenOK is a receiver's answer: fail until heal is called, then ok.
func failThenOK(fail, ok int) (answer func(n int) int, heal func()) {
	var healed atomic.Bool
	return func(int) int {
		if healed.Load() {
			return ok
		}
		return fail
	}, func() { healed.Store(true) }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *rig) create(t *testing.T, spec app.WebhookSpec) app.WebhookInfo {
	t.Helper()
	w, err := g.a.CreateWebhook(t.Context(), everyone, spec)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (g *rig) write(t *testing.T, n int) []int64 {
	t.Helper()
	revs := make([]int64, 0, n)
	for i := range n {
		r, err := g.a.CreateResource(t.Context(), everyone, "orders", "", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), map[string]string{"parity": []string{"even", "odd"}[i%2]})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, r.Revision)
	}
	return revs
}

func (g *rig) get(t *testing.T, id string) app.WebhookInfo {
	t.Helper()
	w, err := g.a.GetWebhook(t.Context(), everyone, id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkOrder checks that events carry exactly want's revisions in order,
// a duplicate only right after the same event (a retried request).
func checkOrder(t *testing.T, evs []wire.EventFrame, want []int64) {
	t.Helper()
	var got []int64
	for i, ev := range evs {
		rev := ev.Resource.Revision
		if i > 0 && rev == evs[i-1].Resource.Revision {
			continue
		}
		got = append(got, rev)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered revisions\n%v\nwant\n%v", got, want)
	}
}

func TestDeliveryInOrderAtLeastOnce(t *testing.T) {
	for _, batch := range []int{1, 10} {
		t.Run(fmt.Sprintf("maxBatch=%d", batch), func(t *testing.T) {
			g := newRig(t, nil)
			rng := rand.New(rand.NewPCG(1, uint64(batch)))
			var rmu sync.Mutex
			recv := newReceiver(t, func(int) int { // 30 % fail
				rmu.Lock()
				defer rmu.Unlock()
				if rng.IntN(10) < 3 {
					return 500
				}
				return 200
			})
			w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", URL: recv.srv.URL, MaxBatch: batch})
			recv.setSecrets(w.NewSecret)
			want := g.write(t, 120)
			waitFor(t, "every event acknowledged", func() bool {
				evs := recv.events(t, true)
				return len(evs) > 0 && evs[len(evs)-1].Resource.Revision == want[len(want)-1]
			})
			checkOrder(t, recv.events(t, true), want)
			// Every request, acknowledged or not, is the head of the line
			// or a retry of the request before it (the same webhook-id):
			// without the retries, the same order.
			checkOrder(t, recv.events(t, false), want)
			waitFor(t, "the status to settle", func() bool {
				info := g.get(t, w.ID)
				return info.State == store.WebhookActive && info.Lag == 0 && info.LagExact
			})
		})
	}
}

func TestDeliverySelectorAndChannel(t *testing.T) {
	g := newRig(t, nil)
	recv := newReceiver(t, nil)
	even := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", Labels: "parity=even", URL: recv.srv.URL})
	ch := g.create(t, app.WebhookSpec{Topic: "channels/room/messages", URL: recv.srv.URL})
	recv.setSecrets(even.NewSecret, ch.NewSecret)
	revs := g.write(t, 10)
	for i := range 5 {
		if _, err := g.a.Publish(t.Context(), everyone, stream.Topic{Kind: stream.TopicChannel, Channel: "room", Path: stream.MessagesTopic("room")}, json.RawMessage(fmt.Sprint(i)), app.ClientInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "5 resource events and 5 messages", func() bool { return len(recv.events(t, true)) == 10 })
	var res []int64
	var msgs []string
	for _, ev := range recv.events(t, true) {
		if ev.Resource != nil {
			res = append(res, ev.Resource.Revision)
		} else {
			msgs = append(msgs, string(ev.Message.Data))
		}
	}
	if fmt.Sprint(res) != fmt.Sprint([]int64{revs[0], revs[2], revs[4], revs[6], revs[8]}) || fmt.Sprint(msgs) != "[0 1 2 3 4]" {
		t.Fatalf("resources %v (of %v), messages %v", res, revs, msgs)
	}
}

func TestDeliveryGoneDisables(t *testing.T) {
	g := newRig(t, nil)
	recv := newReceiver(t, func(int) int { return 410 })
	w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", URL: recv.srv.URL})
	recv.setSecrets(w.NewSecret)
	g.write(t, 3)
	waitFor(t, "the webhook disabled", func() bool { i := g.get(t, w.ID); return !i.Enabled && i.State == store.WebhookPaused })
	if n := len(recv.requests()); n != 1 {
		t.Fatalf("%d requests after a 410, want 1", n)
	}
}

func TestDeliveryPauseAndResume(t *testing.T) {
	g := newRig(t, func(o *app.WebhookOptions) { o.FailureWindow = 150 * time.Millisecond })
	answer, heal := failThenOK(503, 200)
	recv := newReceiver(t, answer)
	w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", URL: recv.srv.URL})
	recv.setSecrets(w.NewSecret)
	want := g.write(t, 5)
	waitFor(t, "paused after the failure window", func() bool { return g.get(t, w.ID).State == store.WebhookPaused })
	info := g.get(t, w.ID)
	if info.LastError == "" || info.FailingSince.IsZero() || info.Attempts == 0 || info.Lag != 5 {
		t.Fatalf("paused status %+v", info.WebhookStatus)
	}
	heal()
	more := g.write(t, 3)
	if _, err := g.a.ResumeWebhook(t.Context(), everyone, w.ID, ""); err != nil {
		t.Fatal(err)
	}
	all := append(want, more...)
	waitFor(t, "every event after resume", func() bool {
		evs := recv.events(t, true)
		return len(evs) > 0 && evs[len(evs)-1].Resource.Revision == all[len(all)-1]
	})
	checkOrder(t, recv.events(t, true), all)
}

func TestDeliveryResyncRequired(t *testing.T) {
	g := newRig(t, nil)
	answer, heal := failThenOK(503, 200)
	recv := newReceiver(t, answer)
	w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", URL: recv.srv.URL})
	recv.setSecrets(w.NewSecret)
	revs := g.write(t, 5)
	waitFor(t, "a failed attempt", func() bool { return len(recv.requests()) > 0 })
	if err := g.st.Compact(t.Context(), revs[3]); err != nil { // the log loses what the webhook has not delivered
		t.Fatal(err)
	}
	heal()
	waitFor(t, "the resync notice acknowledged", func() bool {
		i := g.get(t, w.ID)
		return i.State == store.WebhookResyncRequired && i.ResyncNotified
	})
	var notice []byte
	for _, q := range recv.requests() {
		if bytes.Contains(q.body, []byte(`"webhook.resync-required"`)) {
			notice = q.body
			if q.status == 200 {
				break
			}
		}
	}
	if err := recv.spec.ValidateSchema("WebhookResyncRequired", notice); err != nil {
		t.Fatalf("%v: %s", err, notice)
	}
	// Only the batch read before the compaction (in flight) may have
	// been acknowledged; nothing after the gap.
	if evs := recv.events(t, true); len(evs) > 1 || len(evs) == 1 && evs[0].Resource.Revision != revs[0] {
		t.Fatalf("events acknowledged across the gap: %+v", evs)
	}
	if _, err := g.a.ResumeWebhook(t.Context(), everyone, w.ID, ""); err != nil {
		t.Fatal(err)
	}
	skip := len(recv.events(t, true)) // before the writes: they may arrive at once
	next := g.write(t, 2)
	waitFor(t, "events after the resume", func() bool { return len(recv.events(t, true)) == skip+2 })
	checkOrder(t, recv.events(t, true)[skip:], next)
}

func TestSecretRotationSignsWithBoth(t *testing.T) {
	g := newRig(t, nil)
	recv := newReceiver(t, nil)
	w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", URL: recv.srv.URL})
	recv.setSecrets(w.NewSecret)
	rotated, err := g.a.UpdateWebhook(t.Context(), everyone, w.ID, app.WebhookPatch{RotateSecret: true})
	if err != nil || rotated.NewSecret == "" || rotated.NewSecret == w.NewSecret {
		t.Fatalf("rotate: %v, %q", err, rotated.NewSecret)
	}
	g.write(t, 1)
	waitFor(t, "one delivery", func() bool { return len(recv.requests()) == 1 })
	q := recv.requests()[0]
	if len(strings.Fields(q.signature)) != 2 {
		t.Fatalf("signature header %q, want two signatures", q.signature)
	}
	for _, s := range []string{w.NewSecret, rotated.NewSecret} {
		if err := verify([]string{s}, q.id, q.ts, q.signature, q.body); err != nil {
			t.Fatalf("with one of the secrets: %v", err)
		}
	}
}

func TestCreateRefusals(t *testing.T) {
	g := newRig(t, func(o *app.WebhookOptions) { o.Sender = webhook.NewSender(webhook.Options{}) })
	for _, tc := range []struct {
		name    string
		spec    app.WebhookSpec
		pointer string
	}{
		{"loopback", app.WebhookSpec{Topic: "collections/orders/resources", URL: "http://127.0.0.1:9/x"}, "/url"},
		{"metadata", app.WebhookSpec{Topic: "collections/orders/resources", URL: "http://169.254.169.254/latest"}, "/url"},
		{"scheme", app.WebhookSpec{Topic: "collections/orders/resources", URL: "ftp://93.184.215.14/x"}, "/url"},
		{"presence", app.WebhookSpec{Topic: "channels/room/presence", URL: "https://93.184.215.14/x"}, "/topic"},
		{"labels on a channel", app.WebhookSpec{Topic: "channels/room/messages", Labels: "a=b", URL: "https://93.184.215.14/x"}, "/labels"},
		{"secret", app.WebhookSpec{Topic: "collections/orders/resources", URL: "https://93.184.215.14/x", Secret: "hunter2"}, "/secret"},
		{"batch", app.WebhookSpec{Topic: "collections/orders/resources", URL: "https://93.184.215.14/x", MaxBatch: 101}, "/maxBatch"},
		{"since", app.WebhookSpec{Topic: "collections/orders/resources", URL: "https://93.184.215.14/x", Since: "nope"}, "/since"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.a.CreateWebhook(t.Context(), everyone, tc.spec)
			var ve *app.ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Pointer != tc.pointer || store.ErrorCode(err) != store.CodeInvalidValue {
				t.Fatalf("err = %v, want a 422 naming %s", err, tc.pointer)
			}
		})
	}
	if _, err := g.a.CreateWebhook(t.Context(), everyone, app.WebhookSpec{Topic: "collections/nope/resources", URL: "https://93.184.215.14/x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing collection: %v", err)
	}
	reader := auth.Principal{Kind: auth.KindAPIKey, Subject: "r", Grants: mustGrants(t, "read:**")}
	if _, err := g.a.CreateWebhook(t.Context(), reader, app.WebhookSpec{Topic: "collections/orders/resources", URL: "https://93.184.215.14/x"}); !errors.Is(err, auth.ErrInsufficientScope) {
		t.Fatalf("without admin: %v", err)
	}
}

func mustGrants(t *testing.T, gs ...string) auth.Grants {
	t.Helper()
	g, err := auth.ParseGrants(gs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestDeliveryMetrics follows one webhook through failing and recovering
// in its Prometheus series: the lag counted while it is behind and 0 once
// it keeps up, the state and retry count, and the results of requests.
func TestDeliveryMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newRig(t, func(o *app.WebhookOptions) { o.Metrics = webhook.NewMetrics(reg) })
	answer, heal := failThenOK(500, 204)
	recv := newReceiver(t, answer)
	w := g.create(t, app.WebhookSpec{Topic: "collections/orders/resources", URL: recv.srv.URL})
	recv.setSecrets(w.NewSecret)
	series := func(name string, labels ...string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, m := range mf.GetMetric() {
				for i := 0; i < len(labels); i += 2 {
					found := false
					for _, lp := range m.GetLabel() {
						found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
					}
					if !found {
						continue metrics
					}
				}
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				}
			}
		}
		return -1
	}
	g.write(t, 5)
	waitFor(t, "lag 5, retrying, failures counted", func() bool {
		return series("tandem_webhook_lag", "webhook", w.ID) == 5 &&
			series("tandem_webhook_state", "webhook", w.ID, "state", "retrying") == 1 &&
			series("tandem_webhook_attempts", "webhook", w.ID) >= 1 &&
			series("tandem_webhook_deliveries_total", "webhook", w.ID, "result", "failure") >= 1
	})
	heal()
	waitFor(t, "lag 0, active, five events acknowledged", func() bool {
		return series("tandem_webhook_lag", "webhook", w.ID) == 0 &&
			series("tandem_webhook_state", "webhook", w.ID, "state", "active") == 1 &&
			series("tandem_webhook_state", "webhook", w.ID, "state", "retrying") == 0 &&
			series("tandem_webhook_attempts", "webhook", w.ID) == 0 &&
			series("tandem_webhook_events_total", "webhook", w.ID, "result", "success") == 5
	})
	if err := g.a.DeleteWebhook(t.Context(), everyone, w.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the series of a deleted webhook dropped", func() bool { return series("tandem_webhook_lag", "webhook", w.ID) == -1 })
}
