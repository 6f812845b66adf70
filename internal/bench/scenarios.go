// Package bench is Tandem's load generator (`tandem bench`): it drives a
// server on this machine with WebSocket subscribers, idle connections,
// REST clients or timed writes, and reports throughput, latency
// percentiles (from timestamps carried in the payloads), errors and the
// server's memory. Connections are spread over several loopback source
// addresses and, for large N, over worker processes, because one process
// may hold at most `ulimit -n` sockets.
package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// FanoutOptions configures Fanout.
type FanoutOptions struct {
	Common
	// Subscribers on one channel; 0 publishes with nobody listening (to
	// time the publish replies alone). The CLI's default is 10,000.
	Subscribers int
	// Rate of publishes per second; default 20.
	Rate float64
	// Duration of publishing; default 10 s.
	Duration time.Duration
	// Publish is "rest" (POST /v1/channels/{ch}/messages, the default)
	// or "ws" (publish frames on one WebSocket connection).
	Publish string
	// Publishers caps the publishes in flight: over REST, the keep-alive
	// connections carrying them (default 4); over ws, the publish frames
	// sent and not yet answered on the one connection (default 0: no
	// cap). A publish that finds every slot taken starts late, so the
	// achieved rate (publishes/s) may fall below Rate.
	Publishers int
	// Channel; default a fresh bench-fanout-… name.
	Channel string
	// Drain is the longest wait for the deliveries after the last
	// publish; default 3 s. Later deliveries count as missing.
	Drain time.Duration
	// Concurrency is the number of parallel dials; default 128.
	Concurrency int
}

// Fanout subscribes N WebSocket connections to one channel, publishes at a
// fixed rate and times every delivery.
func Fanout(ctx context.Context, srv *Server, o FanoutOptions) (Result, error) {
	o.Subscribers = max(o.Subscribers, 0)
	o.Rate = defFloat(o.Rate, 20)
	o.Duration = defDur(o.Duration, 10*time.Second)
	o.Drain = defDur(o.Drain, 3*time.Second)
	o.Concurrency = defInt(o.Concurrency, 128)
	if o.Publish == "" {
		o.Publish = "rest"
	}
	if o.Publish != "rest" && o.Publish != "ws" {
		return Result{}, fmt.Errorf("--publish %q: use rest or ws", o.Publish)
	}
	if o.Publish == "rest" {
		o.Publishers = defInt(o.Publishers, 4)
	}
	if o.Channel == "" {
		o.Channel = "bench-fanout-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	base, err := url.Parse(o.URL)
	if err != nil {
		return Result{}, err
	}
	res := Result{Scenario: "fanout", Params: map[string]any{"subscribers": o.Subscribers, "rate": o.Rate,
		"duration": o.Duration.String(), "publish": o.Publish, "publishers": o.Publishers, "channel": o.Channel}}
	topic := "channels/" + o.Channel + "/messages"

	before, _ := srv.Stats(ctx)
	var f *fleet
	connected := 0
	if o.Subscribers > 0 {
		o.logf("fanout: connecting %d subscribers to %s", o.Subscribers, topic)
		f, err = startFleet(ctx, o.Common, o.Subscribers, perWorker(o.Concurrency, o.Common, o.Subscribers), topic)
		if err != nil {
			return res, err
		}
		var failed int
		var firstErr string
		connected, failed, firstErr = f.connected()
		res.Connections, res.Processes = connected, len(f.hs)
		res.ConnectLatency = ptr(f.connectLatency().Summary())
		res.addError("subscribe", uint64(failed))
		if failed > 0 {
			o.logf("fanout: %d subscribers failed; first error: %s", failed, firstErr)
		}
		o.logf("fanout: %d subscribed in %s", connected, f.dialWindow().Round(time.Millisecond))
	}
	o.logf("fanout: publishing %.0f/s for %s over %s, %s in flight", o.Rate, o.Duration, o.Publish, inFlight(o.Publishers))

	var pub publishStats
	cpu0, _ := srv.Stats(ctx)
	t0 := time.Now()
	if o.Publish == "rest" {
		pub = publishREST(ctx, base, o.Common, o.Channel, o.Rate, o.Duration, o.Publishers)
	} else {
		pub = publishWS(ctx, base, o.Common, topic, o.Rate, o.Duration, o.Publishers)
	}
	var reports []WorkerReport
	var ferr error
	if f != nil {
		o.logf("fanout: %d published in %s; waiting up to %s for the deliveries", pub.ok, pub.window.Round(time.Millisecond), o.Drain)
		f.await(ctx, pub.ok*uint64(connected), o.Drain)
	}
	after, serr := srv.Stats(ctx)
	sampled := time.Since(t0).Seconds()
	if f != nil {
		reports, ferr = f.stop()
	}

	secs := pub.window.Seconds()
	res.DurationS = round3(secs)
	res.Publishes = pub.ok
	res.PublishesPerSec = perSec(pub.ok, secs)
	res.PublishLatency = ptr(pub.latency.Summary())
	dropped := res.addDeliveries(reports, connected, t0, pub)
	for k, v := range pub.errors {
		res.addError("publish "+k, v)
	}
	res.addError("dropped connections", uint64(dropped))
	if serr == nil && before.RSSBytes > 0 {
		res.Server = serverReport(before, after, connected, cpu0, sampled)
		res.Server.CPUPerDeliveryUS = cpuPerOpUS(res.Server.CPUSecondsDuringLoad, res.Deliveries)
		res.Server.CPUPerPublishUS = cpuPerOpUS(res.Server.CPUSecondsDuringLoad, res.Publishes)
	}
	return res, ferr
}

// inFlight describes a publishers cap for the progress log.
func inFlight(n int) string {
	if n <= 0 {
		return "no cap on publishes"
	}
	return strconv.Itoa(n)
}

// ConnectionsOptions configures Connections.
type ConnectionsOptions struct {
	Common
	// Connections to open; default 15,000.
	Connections int
	// Concurrency is the number of parallel dials over all workers;
	// default 256.
	Concurrency int
	// Settle is how long to wait after the last connect before sampling
	// the server's memory; default 5 s.
	Settle time.Duration
}

// Connections opens N idle WebSocket connections as fast as the server
// takes them and reports the connect rate and the server's memory per
// connection (RSS delta / N).
func Connections(ctx context.Context, srv *Server, o ConnectionsOptions) (Result, error) {
	o.Connections = defInt(o.Connections, 15000)
	o.Concurrency = defInt(o.Concurrency, 256)
	o.Settle = defDur(o.Settle, 5*time.Second)
	res := Result{Scenario: "connections", Params: map[string]any{"connections": o.Connections, "concurrency": o.Concurrency,
		"settle": o.Settle.String(), "sourceAddrs": o.SourceAddrs}}
	before, err := srv.Stats(ctx)
	if err != nil {
		return res, fmt.Errorf("sampling the server before the load: %w", err)
	}
	o.logf("connections: opening %d (server RSS %.1f MiB)", o.Connections, float64(before.RSSBytes)/(1<<20))
	f, err := startFleet(ctx, o.Common, o.Connections, perWorker(o.Concurrency, o.Common, o.Connections), "")
	if err != nil {
		return res, err
	}
	connected, failed, firstErr := f.connected()
	window := f.dialWindow()
	res.Connections, res.Processes = connected, len(f.hs)
	res.DurationS = round3(window.Seconds())
	res.ConnectsPerSec = perSec(uint64(connected), window.Seconds())
	res.ConnectLatency = ptr(f.connectLatency().Summary())
	res.addError("connect", uint64(failed))
	if failed > 0 {
		o.logf("connections: %d failed; first error: %s", failed, firstErr)
	}
	o.logf("connections: %d open in %s; settling %s", connected, window.Round(time.Millisecond), o.Settle)
	sleep(ctx, o.Settle)
	after, serr := srv.Stats(ctx)
	reports, ferr := f.stop()
	var dropped int
	for _, r := range reports {
		dropped += r.Dropped
	}
	res.addError("dropped connections", uint64(dropped))
	if serr != nil {
		return res, errors.Join(fmt.Errorf("sampling the server after the load: %w", serr), ferr)
	}
	res.Server = serverReport(before, after, connected, ServerStats{}, 0)
	return res, ferr
}

// RESTOptions configures REST.
type RESTOptions struct {
	Common
	// Clients is the number of concurrent keep-alive clients; default 64.
	Clients int
	// Duration of the measured run (after Warmup); default 10 s.
	Duration time.Duration
	// Warmup runs the same load unmeasured first; default 1 s.
	Warmup time.Duration
	// Op is "get" (one resource, over and over) or "create" (POST new
	// resources).
	Op string
	// Collection; default "bench".
	Collection string
}

// REST runs closed-loop REST clients and reports requests/s and latency.
func REST(ctx context.Context, srv *Server, o RESTOptions) (Result, error) {
	o.Clients = defInt(o.Clients, 64)
	o.Duration = defDur(o.Duration, 10*time.Second)
	if o.Warmup < 0 {
		o.Warmup = 0
	} else if o.Warmup == 0 {
		o.Warmup = time.Second
	}
	if o.Collection == "" {
		o.Collection = "bench"
	}
	res := Result{Scenario: "rest", Params: map[string]any{"op": o.Op, "clients": o.Clients, "duration": o.Duration.String(), "collection": o.Collection}}
	if o.Op != "get" && o.Op != "create" {
		return res, fmt.Errorf("--op %q: use get or create", o.Op)
	}
	base, err := url.Parse(o.URL)
	if err != nil {
		return res, err
	}
	if err := ensureCollection(ctx, base, o.Token, o.Collection); err != nil {
		return res, err
	}
	coll := "/v1/collections/" + url.PathEscape(o.Collection) + "/resources"
	var op func(c *httpConn, n int64) (int, error)
	switch o.Op {
	case "get":
		path := coll + "/bench-get"
		setup := newHTTPConn(base, nil)
		defer setup.Close()
		status, body, err := setup.Do(ctx, "PUT", path, "application/json", []byte(`{"data":{"title":"bench","n":1}}`), o.Token)
		if err != nil || (status != 200 && status != 201) {
			return res, fmt.Errorf("creating the resource to GET: %d %s %v", status, body, err)
		}
		op = func(c *httpConn, _ int64) (int, error) {
			status, _, err := c.Do(ctx, "GET", path, "", nil, o.Token)
			return status, err
		}
	case "create":
		op = func(c *httpConn, n int64) (int, error) {
			body := append(append([]byte(`{"data":`), payload(n, time.Now())...), '}')
			status, _, err := c.Do(ctx, "POST", coll, "application/json", body, o.Token)
			return status, err
		}
	default:
		return res, fmt.Errorf("--op %q: use get or create", o.Op)
	}
	src := newSourceAddrs(base, o.SourceAddrs, 0)
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		seq       atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		lat       Histogram
		errs      = map[string]uint64{}
	)
	o.logf("rest: %d clients, op %s, warm-up %s, then %s", o.Clients, o.Op, o.Warmup, o.Duration)
	for i := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newHTTPConn(base, src.pick(i))
			defer c.Close()
			var local Histogram
			localErrs := map[string]uint64{}
			for !stop.Load() && ctx.Err() == nil {
				m := measuring.Load()
				t0 := time.Now()
				status, err := op(c, seq.Add(1))
				d := time.Since(t0)
				if !m || !measuring.Load() {
					continue
				}
				switch {
				case err != nil:
					localErrs["transport"]++
				case status >= 300:
					localErrs["HTTP "+strconv.Itoa(status)]++
				default:
					local.Record(d)
				}
			}
			mu.Lock()
			lat.Merge(&local)
			for k, v := range localErrs {
				errs[k] += v
			}
			mu.Unlock()
		}()
	}
	sleep(ctx, o.Warmup)
	before, _ := srv.Stats(ctx)
	measuring.Store(true)
	start := time.Now()
	sleep(ctx, o.Duration)
	measuring.Store(false)
	secs := time.Since(start).Seconds()
	after, serr := srv.Stats(ctx)
	stop.Store(true)
	wg.Wait()
	res.DurationS = round3(secs)
	res.Requests = lat.Count()
	res.RequestsPerSec = perSec(lat.Count(), secs)
	res.RequestLatency = ptr(lat.Summary())
	for k, v := range errs {
		res.addError(k, v)
	}
	if serr == nil && before.RSSBytes > 0 {
		res.Server = serverReport(before, after, 0, before, secs)
	}
	return res, ctx.Err()
}

// WritesToEventsOptions configures WritesToEvents.
type WritesToEventsOptions struct {
	Common
	// Rate of REST creates per second; default 1,000.
	Rate float64
	// Duration of writing; default 10 s.
	Duration time.Duration
	// Subscribers on the collection topic; default 1.
	Subscribers int
	// Writers is the number of concurrent REST connections that carry the
	// paced writes; default 32.
	Writers int
	// Collection; default "bench-w2e".
	Collection string
	// Drain is the longest wait for the events after the last write;
	// default 2 s.
	Drain time.Duration
}

// WritesToEvents creates resources over REST at a fixed rate while
// WebSocket subscribers of the collection time each event from the
// timestamp the writer put into the resource just before sending it.
func WritesToEvents(ctx context.Context, srv *Server, o WritesToEventsOptions) (Result, error) {
	o.Rate = defFloat(o.Rate, 1000)
	o.Duration = defDur(o.Duration, 10*time.Second)
	o.Subscribers = defInt(o.Subscribers, 1)
	o.Writers = defInt(o.Writers, 32)
	o.Drain = defDur(o.Drain, 2*time.Second)
	if o.Collection == "" {
		o.Collection = "bench-w2e"
	}
	res := Result{Scenario: "writes-to-events", Params: map[string]any{"rate": o.Rate, "duration": o.Duration.String(),
		"subscribers": o.Subscribers, "writers": o.Writers, "collection": o.Collection}}
	base, err := url.Parse(o.URL)
	if err != nil {
		return res, err
	}
	if err := ensureCollection(ctx, base, o.Token, o.Collection); err != nil {
		return res, err
	}
	f, err := startFleet(ctx, o.Common, o.Subscribers, 16, "collections/"+o.Collection+"/resources")
	if err != nil {
		return res, err
	}
	connected, failed, _ := f.connected()
	res.Connections, res.Processes = connected, len(f.hs)
	res.addError("subscribe", uint64(failed))
	coll := "/v1/collections/" + url.PathEscape(o.Collection) + "/resources"
	src := newSourceAddrs(base, o.SourceAddrs, 1000)
	o.logf("writes-to-events: %d subscribers; writing %.0f/s for %s", connected, o.Rate, o.Duration)
	before, _ := srv.Stats(ctx)
	t0 := time.Now()
	w := runPaced(ctx, o.Rate, o.Duration, o.Writers, restPoster(ctx, base, src, coll, o.Token))
	f.await(ctx, w.ok*uint64(connected), o.Drain)
	after, serr := srv.Stats(ctx)
	sampled := time.Since(t0).Seconds()
	reports, ferr := f.stop()
	secs := w.window.Seconds()
	res.DurationS = round3(secs)
	res.Requests = w.ok
	res.RequestsPerSec = perSec(w.ok, secs)
	res.RequestLatency = ptr(w.latency.Summary())
	dropped := res.addDeliveries(reports, connected, t0, w)
	for k, v := range w.errors {
		res.addError("write "+k, v)
	}
	res.addError("dropped connections", uint64(dropped))
	if serr == nil && before.RSSBytes > 0 {
		res.Server = serverReport(before, after, 0, before, sampled)
	}
	return res, ferr
}
