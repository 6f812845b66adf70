package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests by method, route pattern and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// series caches the series of the standard methods and the known
	// patterns (a bounded set), so a request does not hash its labels.
	mu     sync.RWMutex
	series map[seriesKey]httpSeries
}

type seriesKey struct {
	method, pattern string
	status          int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// observe counts one request.
func (m *httpMetrics) observe(method, pattern string, status int, took time.Duration) {
	s := m.seriesOf(method, pattern, status)
	s.requests.Inc()
	s.duration.Observe(took.Seconds())
}

func (m *httpMetrics) seriesOf(method, pattern string, status int) httpSeries {
	k := seriesKey{method, pattern, status}
	cacheable := pattern != "unmatched" && status >= 100 && status <= 599 && standardMethod(method)
	if cacheable {
		m.mu.RLock()
		s, ok := m.series[k]
		m.mu.RUnlock()
		if ok {
			return s
		}
	}
	s := httpSeries{m.requests.WithLabelValues(method, pattern, strconv.Itoa(status)), m.duration.WithLabelValues(method, pattern)}
	if cacheable {
		m.mu.Lock()
		m.series[k] = s
		m.mu.Unlock()
	}
	return s
}

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tandem_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
		series: map[seriesKey]httpSeries{},
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// streamMetrics count the SSE streams and long-polls and what they
// deliver (the WebSocket server counts its own, tandem_ws_*).
type streamMetrics struct {
	sseClients        prometheus.Gauge
	sseEvents         prometheus.Counter
	longpollWaiting   prometheus.Gauge
	longpollResponses *prometheus.CounterVec
	longpollEvents    prometheus.Counter
}

func newStreamMetrics(reg prometheus.Registerer) *streamMetrics {
	m := &streamMetrics{
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_sse_clients", Help: "Open SSE streams (GET /v1/events)."}),
		sseEvents:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_sse_events_total", Help: "Events written to SSE streams (bookmarks and errors included)."}),
		longpollWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tandem_longpoll_waiting", Help: "Long-polls (GET /v1/changes) in progress, waiting for events."}),
		longpollResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_longpoll_responses_total", Help: "Long-poll answers by result: events (at least one) or empty (the wait ended without any)."}, []string{"result"}),
		longpollEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_longpoll_events_total", Help: "Events delivered in long-poll answers."}),
	}
	reg.MustRegister(m.sseClients, m.sseEvents, m.longpollWaiting, m.longpollResponses, m.longpollEvents)
	return m
}
