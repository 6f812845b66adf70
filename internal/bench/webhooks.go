// The webhooks scenario: a receiver inside the bench process, a webhook
// on a collection pointed at it, and REST writes, paced (write → webhook
// latency) or written ahead as a backlog (delivery throughput).

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// WebhooksOptions configures Webhooks.
type WebhooksOptions struct {
	Common
	// Rate of REST creates per second for Duration, each event timed from
	// just before its write was sent to the arrival of the webhook request
	// carrying it. 0 selects throughput mode: Events resources are written
	// while the webhook is disabled, then it is enabled and timed until
	// the receiver has acknowledged them all. Negative rates are refused.
	Rate float64
	// Duration of writing in rate mode; default 10 s.
	Duration time.Duration
	// Events written before the webhook is enabled in throughput mode;
	// default 20,000.
	Events int
	// MaxBatch is the webhook's maxBatch (events per request, 1–100);
	// default 1.
	MaxBatch int
	// Writers is the number of concurrent REST connections carrying the
	// writes; default 32.
	Writers int
	// ReceiverDelay is how long the receiver waits before answering each
	// request, to model a slow receiver; default 0.
	ReceiverDelay time.Duration
	// Collection; default "bench-webhooks".
	Collection string
	// Drain is the longest wait without a new event once the writes are
	// done (rate mode) or the webhook is enabled (throughput mode); the
	// events still undelivered then count as missing. Default 5 s.
	Drain time.Duration
}

// Webhooks creates a webhook on a collection, pointed at a receiver the
// bench runs on 127.0.0.1, and writes resources over REST. The receiver
// verifies every request with the Go SDK's VerifyWebhook, parses its events
// (one object, or an array with maxBatch > 1) and answers 204. The server
// must run with --webhook-allow-private to deliver to loopback (a spawned
// server does).
func Webhooks(ctx context.Context, srv *Server, o WebhooksOptions) (Result, error) {
	o.Duration = defDur(o.Duration, 10*time.Second)
	o.Events = defInt(o.Events, 20000)
	o.MaxBatch = defInt(o.MaxBatch, 1)
	o.Writers = defInt(o.Writers, 32)
	o.Drain = defDur(o.Drain, 5*time.Second)
	if o.Collection == "" {
		o.Collection = "bench-webhooks"
	}
	mode := "rate"
	if o.Rate == 0 {
		mode = "throughput"
	}
	res := Result{Scenario: "webhooks", Params: map[string]any{"mode": mode, "maxBatch": o.MaxBatch, "writers": o.Writers,
		"receiverDelay": o.ReceiverDelay.String(), "collection": o.Collection}}
	if mode == "rate" {
		res.Params["rate"], res.Params["duration"] = o.Rate, o.Duration.String()
	} else {
		res.Params["events"] = o.Events
	}
	switch {
	case o.Rate < 0:
		return res, fmt.Errorf("--rate %v: use a positive rate, or 0 for throughput mode", o.Rate)
	case o.MaxBatch > 100:
		return res, fmt.Errorf("--max-batch %d: use 1 to 100", o.MaxBatch)
	case o.ReceiverDelay < 0:
		return res, fmt.Errorf("--receiver-delay %s: must not be negative", o.ReceiverDelay)
	}
	base, err := url.Parse(o.URL)
	if err != nil {
		return res, err
	}
	if err := ensureCollection(ctx, base, o.Token, o.Collection); err != nil {
		return res, err
	}
	total := o.Events
	if mode == "rate" {
		total = int(o.Duration.Seconds() * o.Rate) // as runPaced schedules them
	}
	rv, err := startReceiver(total, o.ReceiverDelay)
	if err != nil {
		return res, err
	}
	defer rv.close()
	api := newHTTPConn(base, nil)
	defer api.Close()
	topic := "collections/" + o.Collection + "/resources"
	// The webhook is created after the collection and before the writes,
	// so its cursor is the topic's head: it delivers exactly what follows.
	wh, err := createWebhook(ctx, api, o.Token, topic, rv.url, o.MaxBatch, mode == "rate")
	if err != nil {
		return res, err
	}
	rv.setSecret(wh.Secret)
	o.logf("webhooks: receiver at %s; webhook %s on %s (maxBatch %d, receiver delay %s)", rv.url, wh.ID, topic, o.MaxBatch, o.ReceiverDelay)
	coll := "/v1/collections/" + url.PathEscape(o.Collection) + "/resources"
	src := newSourceAddrs(base, o.SourceAddrs, 3000)
	write := restPoster(ctx, base, src, coll, o.Token)
	if mode == "rate" {
		err = webhooksRate(ctx, srv, o, rv, api, coll, write, &res)
	} else {
		err = webhooksThroughput(ctx, srv, o, rv, api, wh.ID, write, &res)
	}
	if derr := deleteWebhook(context.WithoutCancel(ctx), api, o.Token, wh.ID); derr != nil {
		o.logf("webhooks: deleting webhook %s: %v", wh.ID, derr)
		res.addError("delete webhook", 1)
	}
	rv.report(&res)
	return res, err
}

// webhooksRate is the rate mode of Webhooks: one warm-up write delivered
// first (so the webhook's runner is running), then paced writes.
func webhooksRate(ctx context.Context, srv *Server, o WebhooksOptions, rv *whReceiver, api *httpConn, coll string,
	write func(i int) func(n int64) (bool, string), res *Result) error {
	body := append(append([]byte(`{"data":`), payload(warmUpN, time.Now())...), '}')
	if status, reply, err := api.Do(ctx, "POST", coll, "application/json", body, o.Token); err != nil || status != 201 {
		return fmt.Errorf("warm-up write: HTTP %d %s %v", status, bytes.TrimSpace(reply), err)
	}
	select {
	case <-rv.warm:
	case <-time.After(o.Drain):
		return fmt.Errorf("the warm-up write was not delivered to the webhook within %s", o.Drain)
	case <-ctx.Done():
		return ctx.Err()
	}
	rv.startMeasuring()
	o.logf("webhooks: warm-up delivered; writing %.0f/s for %s", o.Rate, o.Duration)
	before, _ := srv.Stats(ctx)
	t0 := time.Now()
	w := runPaced(ctx, o.Rate, o.Duration, o.Writers, write)
	o.logf("webhooks: %d written in %s; waiting for the deliveries (up to %s without progress)", w.ok, w.window.Round(time.Millisecond), o.Drain)
	rv.await(ctx, o.Common, w.ok, o.Drain)
	after, serr := srv.Stats(ctx)
	sampled := time.Since(t0).Seconds()
	secs := w.window.Seconds()
	res.DurationS = round3(secs)
	res.Requests = w.ok
	res.RequestsPerSec = perSec(w.ok, secs)
	res.RequestLatency = ptr(w.latency.Summary())
	res.ExpectedDeliveries = w.ok
	rv.mu.Lock()
	res.Deliveries = rv.distinct
	res.WebhookRequests = rv.requests
	res.Latency = ptr(rv.lat.Summary())
	rv.mu.Unlock()
	res.DeliveriesPerSec = perSec(res.Deliveries, secs)
	res.WebhookRequestsPerSec = perSec(res.WebhookRequests, secs)
	res.Missing = int64(res.ExpectedDeliveries) - int64(res.Deliveries)
	for k, v := range w.errors {
		res.addError("write "+k, v)
	}
	if serr == nil && before.RSSBytes > 0 {
		res.Server = serverReport(before, after, 0, before, sampled)
	}
	return ctx.Err()
}

// webhooksThroughput is the throughput mode of Webhooks: the backlog is
// written while the webhook is disabled, then delivery is timed from the
// enable to the acknowledgement of its last event.
func webhooksThroughput(ctx context.Context, srv *Server, o WebhooksOptions, rv *whReceiver, api *httpConn, id string,
	write func(i int) func(n int64) (bool, string), res *Result) error {
	o.logf("webhooks: webhook disabled; writing %d resources over %d connections", o.Events, o.Writers)
	w := runBurst(ctx, int64(o.Events), o.Writers, write)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	o.logf("webhooks: %d written in %s (%.0f/s); enabling the webhook", w.ok, w.window.Round(time.Millisecond), perSec(w.ok, w.window.Seconds()))
	res.Requests = w.ok
	res.RequestLatency = ptr(w.latency.Summary())
	res.ExpectedDeliveries = w.ok
	for k, v := range w.errors {
		res.addError("write "+k, v)
	}
	// The webhook's start point: everything written since it was created
	// is behind its cursor, and nothing else (lag is a lower bound past
	// the server's counting budget).
	st, err := getWebhook(ctx, api, o.Token, id)
	if err != nil {
		return err
	}
	if st.Lag > int64(w.ok) || st.LagExact && st.Lag != int64(w.ok) {
		o.logf("webhooks: the disabled webhook is %d events behind (exact: %v), want %d", st.Lag, st.LagExact, w.ok)
		res.addError("webhook start point", 1)
	}
	rv.startMeasuring()
	before, _ := srv.Stats(ctx)
	t0 := time.Now()
	if err := patchWebhook(ctx, api, o.Token, id, `{"enabled":true}`); err != nil {
		return err
	}
	rv.await(ctx, o.Common, w.ok, o.Drain)
	after, serr := srv.Stats(ctx)
	sampled := time.Since(t0).Seconds()
	rv.mu.Lock()
	res.Deliveries = rv.distinct
	res.WebhookRequests = rv.requests
	end := rv.lastNew
	rv.mu.Unlock()
	var secs float64
	if end.After(t0) {
		secs = end.Sub(t0).Seconds()
	}
	res.DurationS = round3(secs)
	res.DeliveriesPerSec = perSec(res.Deliveries, secs)
	res.WebhookRequestsPerSec = perSec(res.WebhookRequests, secs)
	res.Missing = int64(res.ExpectedDeliveries) - int64(res.Deliveries)
	o.logf("webhooks: %d of %d delivered in %s over %d requests", res.Deliveries, res.ExpectedDeliveries,
		time.Duration(secs*float64(time.Second)).Round(time.Millisecond), res.WebhookRequests)
	if serr == nil && before.RSSBytes > 0 {
		res.Server = serverReport(before, after, 0, before, sampled)
	}
	return ctx.Err()
}

// warmUpN is the benchN of the rate mode's warm-up write.
const warmUpN = -1

// whReceiver is the bench's webhook receiver on 127.0.0.1: it verifies
// every request, parses its events and records each benchN's receipts.
type whReceiver struct {
	url   string
	delay time.Duration
	srv   *http.Server
	done  chan struct{} // Serve returned

	mu        sync.Mutex
	secret    string
	measuring bool
	warm      chan struct{} // closed when the warm-up event arrives
	warmed    bool
	seen      []uint32 // receipts per benchN
	distinct  uint64   // benchNs received at least once
	dups      uint64   // receipts after the first
	requests  uint64   // requests while measuring
	lat       Histogram
	lastNew   time.Time // when the last request with a new event was answered
	errs      map[string]uint64
}

// startReceiver listens on 127.0.0.1 (a free port) for the webhook's
// requests; events carry benchN 0 … n−1 (or warmUpN).
func startReceiver(n int, delay time.Duration) (*whReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	rv := &whReceiver{url: "http://" + ln.Addr().String() + "/hook", delay: delay, done: make(chan struct{}),
		warm: make(chan struct{}), seen: make([]uint32, max(n, 0)), errs: map[string]uint64{}}
	rv.srv = &http.Server{Handler: rv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(rv.done)
		_ = rv.srv.Serve(ln)
	}()
	return rv, nil
}

func (rv *whReceiver) close() {
	_ = rv.srv.Close()
	<-rv.done
}

func (rv *whReceiver) setSecret(s string) {
	rv.mu.Lock()
	rv.secret = s
	rv.mu.Unlock()
}

// startMeasuring counts requests from now on (not the warm-up's).
func (rv *whReceiver) startMeasuring() {
	rv.mu.Lock()
	rv.measuring = true
	rv.mu.Unlock()
}

// whEvent is what the receiver reads of one event.
type whEvent struct {
	Type     string `json:"type"`
	Event    string `json:"event"`
	Resource *struct {
		Data struct {
			BenchT int64  `json:"benchT"`
			BenchN *int64 `json:"benchN"`
		} `json:"data"`
	} `json:"resource"`
}

// parseWebhookBody reads a request body: one event, or with maxBatch > 1
// a JSON array of them.
func parseWebhookBody(b []byte) ([]whEvent, error) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) > 0 && b[0] == '[' {
		var evs []whEvent
		err := json.Unmarshal(b, &evs)
		return evs, err
	}
	var ev whEvent
	err := json.Unmarshal(b, &ev)
	return []whEvent{ev}, err
}

// ServeHTTP handles one webhook request. A request that does not verify
// or parse is counted and refused (the server retries it); any other is
// answered 204 after the receiver delay.
func (rv *whReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	rv.mu.Lock()
	secret, measuring := rv.secret, rv.measuring
	rv.mu.Unlock()
	fail := func(kind string, status int) {
		rv.mu.Lock()
		rv.errs[kind]++
		rv.mu.Unlock()
		w.WriteHeader(status)
	}
	if err != nil {
		fail("webhook read", http.StatusBadRequest)
		return
	}
	if err := tandem.VerifyWebhook(secret, r.Header, body); err != nil {
		fail("webhook verify", http.StatusUnauthorized)
		return
	}
	evs, err := parseWebhookBody(body)
	if err != nil {
		fail("webhook body", http.StatusBadRequest)
		return
	}
	sleep(r.Context(), rv.delay)
	now := time.Now()
	rv.mu.Lock()
	if measuring {
		rv.requests++
	}
	for _, ev := range evs {
		if ev.Type != "event" || ev.Event != "resource.created" || ev.Resource == nil || ev.Resource.Data.BenchN == nil {
			rv.errs["webhook unexpected event"]++
			continue
		}
		n := *ev.Resource.Data.BenchN
		if n == warmUpN {
			if !rv.warmed {
				rv.warmed = true
				close(rv.warm)
			}
			continue
		}
		if n < 0 || n >= int64(len(rv.seen)) {
			rv.errs["webhook unexpected event"]++
			continue
		}
		rv.seen[n]++
		if rv.seen[n] > 1 {
			rv.dups++
			continue
		}
		rv.distinct++
		rv.lastNew = now
		rv.lat.Record(t.Sub(time.Unix(0, ev.Resource.Data.BenchT)))
	}
	rv.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// await waits until want distinct events have arrived, or for drain
// without a new one, with a progress line every 5 s.
func (rv *whReceiver) await(ctx context.Context, c Common, want uint64, drain time.Duration) {
	last, lastN := time.Now(), uint64(0)
	nextLog := time.Now().Add(5 * time.Second)
	for ctx.Err() == nil {
		rv.mu.Lock()
		n := rv.distinct
		rv.mu.Unlock()
		if n >= want {
			return
		}
		now := time.Now()
		if n != lastN {
			last, lastN = now, n
		} else if now.Sub(last) >= drain {
			c.logf("webhooks: no new event for %s; %d of %d delivered", drain, n, want)
			return
		}
		if now.After(nextLog) {
			c.logf("webhooks: %d of %d delivered", n, want)
			nextLog = now.Add(5 * time.Second)
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

// report adds the receiver's duplicates and errors to res.
func (rv *whReceiver) report(res *Result) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	res.Duplicates = rv.dups
	for k, v := range rv.errs {
		res.addError(k, v)
	}
}

// webhookInfo is what the bench reads of the webhook API's replies.
type webhookInfo struct {
	ID       string `json:"id"`
	Secret   string `json:"secret"`
	Lag      int64  `json:"lag"`
	LagExact bool   `json:"lagExact"`
}

func createWebhook(ctx context.Context, c *httpConn, token, topic, target string, maxBatch int, enabled bool) (webhookInfo, error) {
	body, _ := json.Marshal(map[string]any{"topic": topic, "url": target, "maxBatch": maxBatch, "enabled": enabled,
		"description": "tandem bench webhooks"})
	status, reply, err := c.Do(ctx, "POST", "/v1/webhooks", "application/json", body, token)
	if err != nil {
		return webhookInfo{}, fmt.Errorf("creating the webhook: %w", err)
	}
	if status != 201 {
		hint := ""
		if status == 422 && strings.Contains(string(reply), "/url") {
			hint = " (a server given with --url must run with --webhook-allow-private to deliver to the bench's loopback receiver)"
		}
		return webhookInfo{}, fmt.Errorf("creating the webhook: HTTP %d: %s%s", status, bytes.TrimSpace(reply), hint)
	}
	var w webhookInfo
	if err := json.Unmarshal(reply, &w); err != nil || w.ID == "" || w.Secret == "" {
		return webhookInfo{}, fmt.Errorf("creating the webhook: unexpected reply %s", reply)
	}
	return w, nil
}

func getWebhook(ctx context.Context, c *httpConn, token, id string) (webhookInfo, error) {
	status, reply, err := c.Do(ctx, "GET", "/v1/webhooks/"+url.PathEscape(id), "", nil, token)
	if err == nil && status != 200 {
		err = fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(reply))
	}
	var w webhookInfo
	if err == nil {
		err = json.Unmarshal(reply, &w)
	}
	if err != nil {
		return w, fmt.Errorf("reading webhook %s: %w", id, err)
	}
	return w, nil
}

func patchWebhook(ctx context.Context, c *httpConn, token, id, patch string) error {
	status, reply, err := c.Do(ctx, "PATCH", "/v1/webhooks/"+url.PathEscape(id), "application/merge-patch+json", []byte(patch), token)
	if err == nil && status != 200 {
		err = fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(reply))
	}
	if err != nil {
		return fmt.Errorf("updating webhook %s with %s: %w", id, patch, err)
	}
	return nil
}

func deleteWebhook(ctx context.Context, c *httpConn, token, id string) error {
	status, reply, err := c.Do(ctx, "DELETE", "/v1/webhooks/"+url.PathEscape(id), "", nil, token)
	if err == nil && status != 204 && status != 404 {
		err = fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(reply))
	}
	return err
}
