package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests by method, route pattern and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
