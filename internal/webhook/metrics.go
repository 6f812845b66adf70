package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/store"
)

// Metrics implements app.WebhookMetrics with Prometheus series per
// webhook: tandem_webhook_deliveries_total{webhook,result},
// tandem_webhook_delivery_seconds{result}, tandem_webhook_lag{webhook},
// tandem_webhook_attempts{webhook} and tandem_webhook_state{webhook,state}
// (1 for the current state). A node exports the webhooks it delivers.
type Metrics struct {
	deliveries *prometheus.CounterVec
	events     *prometheus.CounterVec
	took       *prometheus.HistogramVec
	lag        *prometheus.GaugeVec
	attempts   *prometheus.GaugeVec
	state      *prometheus.GaugeVec
}

var _ app.WebhookMetrics = (*Metrics)(nil)

var states = []store.WebhookState{store.WebhookActive, store.WebhookRetrying, store.WebhookPaused, store.WebhookResyncRequired}

// NewMetrics registers the webhook series with reg. It panics when they
// are registered twice (prometheus.MustRegister).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_webhook_deliveries_total",
			Help: "Webhook requests by webhook and result (success, failure, gone)."}, []string{"webhook", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_webhook_events_total",
			Help: "Events carried by webhook requests, by webhook and result."}, []string{"webhook", "result"}),
		took: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_webhook_delivery_seconds",
			Help: "Webhook request latency by result.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}, []string{"result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tandem_webhook_lag",
			Help: "Events of the webhook's topic not yet acknowledged (counted up to a budget)."}, []string{"webhook"}),
		attempts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tandem_webhook_attempts",
			Help: "Consecutive failed attempts of the event at the head of the webhook's line (its retry count)."}, []string{"webhook"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tandem_webhook_state",
			Help: "1 for the webhook's current state (active, retrying, paused, resync-required)."}, []string{"webhook", "state"}),
	}
	reg.MustRegister(m.deliveries, m.events, m.took, m.lag, m.attempts, m.state)
	return m
}

// Delivered implements app.WebhookMetrics.
func (m *Metrics) Delivered(webhook, result string, events int, took time.Duration) {
	m.deliveries.WithLabelValues(webhook, result).Inc()
	m.events.WithLabelValues(webhook, result).Add(float64(events))
	m.took.WithLabelValues(result).Observe(took.Seconds())
}

// State implements app.WebhookMetrics.
func (m *Metrics) State(webhook string, state store.WebhookState, attempts int) {
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(webhook, string(s)).Set(v)
	}
	m.attempts.WithLabelValues(webhook).Set(float64(attempts))
}

// Lag implements app.WebhookMetrics.
func (m *Metrics) Lag(webhook string, n int64) { m.lag.WithLabelValues(webhook).Set(float64(n)) }

// Forget implements app.WebhookMetrics.
func (m *Metrics) Forget(webhook string) {
	l := prometheus.Labels{"webhook": webhook}
	m.deliveries.DeletePartialMatch(l)
	m.events.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.attempts.DeletePartialMatch(l)
	m.state.DeletePartialMatch(l)
}
