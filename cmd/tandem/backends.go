package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/memory"
	"github.com/tandemhq/tandem/internal/broker/redis"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// This file chooses the store's and the broker's implementations for
// --store and --broker, and reports their health and lag.

func isPostgresDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

func isRedisURL(s string) bool {
	return strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://")
}

// checkBackends refuses combinations of --store and --broker that cannot
// work, before anything is opened.
func checkBackends(c serveConfig) error {
	switch b := c.Broker; {
	case b == "" || b == "memory":
		return nil
	case isRedisURL(b):
		if !isPostgresDSN(c.Store) {
			return errors.New("--broker redis://… with a SQLite store: several nodes on one SQLite file is not supported: " +
				"use --store postgres://… (every node must share one PostgreSQL database), or drop --broker to run a single node")
		}
		return nil
	}
	return fmt.Errorf("--broker %q: use memory (one node) or redis://host:port/db (several nodes sharing one Redis)", redactDSN(c.Broker))
}

// openBroker returns the configured broker and describes it for the log.
func openBroker(ctx context.Context, c serveConfig, logger *slog.Logger) (broker.Broker, string, error) {
	if !isRedisURL(c.Broker) {
		if isPostgresDSN(c.Store) {
			logger.Warn("PostgreSQL store with the memory broker: channel messages and presence stay on this node; use --broker redis://… when running several nodes")
		}
		return memory.New(memory.Options{}), "memory", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := redis.New(ctx, c.Broker, redis.Options{Prefix: c.RedisPrefix, Logger: logger})
	if err != nil {
		return nil, "", fmt.Errorf("connect to the Redis broker %s: %w", redactDSN(c.Broker), err)
	}
	return b, "redis:" + redactDSN(c.Broker), nil
}

// readiness checks the store and the broker concurrently for /readyz.
func readiness(st store.Store, br broker.Broker, logger *slog.Logger) func(context.Context) map[string]string {
	return func(ctx context.Context) map[string]string {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var storeErr, brokerErr error
		var wg sync.WaitGroup
		wg.Go(func() { storeErr = st.Ping(ctx) })
		wg.Go(func() { brokerErr = br.Ping(ctx) })
		wg.Wait()
		checks := map[string]string{"store": "ok", "broker": "ok"}
		if storeErr != nil {
			checks["store"] = "unavailable"
			logger.Debug("readiness: store unavailable", "err", storeErr)
		}
		if brokerErr != nil {
			checks["broker"] = "unavailable"
			logger.Debug("readiness: broker unavailable", "err", brokerErr)
		}
		return checks
	}
}

// measuredHandler is the broker.Handler of the node's channels engine,
// counting what the broker delivers and how late.
type measuredHandler struct {
	broker.Handler
	lag    prometheus.Histogram
	resets prometheus.Counter
}

func (h measuredHandler) HandleMessage(m broker.Message) {
	if !m.Time.IsZero() {
		h.lag.Observe(max(0, time.Since(m.Time).Seconds()))
	}
	h.Handler.HandleMessage(m)
}

func (h measuredHandler) HandleReset(channel, epoch string) {
	h.resets.Inc()
	h.Handler.HandleReset(channel, epoch)
}

// registerBackendMetrics exports the change feed's lag behind the store and
// the broker's delivery lag, resets and (Redis) connection state, and
// returns the handler to give the broker's Run.
func registerBackendMetrics(reg prometheus.Registerer, st store.Store, feed *stream.Feed, br broker.Broker, h broker.Handler) broker.Handler {
	mh := measuredHandler{
		Handler: h,
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tandem_broker_delivery_lag_seconds",
			Help:    "Time from a channel message's publish (broker clock; Redis timestamps have millisecond resolution) to its delivery to this node.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		resets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tandem_broker_resets_total",
			Help: "Channel resets delivered by the broker (history lost or messages possibly missed); each ends that channel's subscriptions with resync-required.",
		}),
	}
	reg.MustRegister(mh.lag, mh.resets, &feedLagCollector{st: st, feed: feed})
	if rb, ok := br.(interface{ Stats() redis.Stats }); ok {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_broker_reconnects_total", Help: "Redis pub/sub connections re-established (each resets the subscribed channels)."},
				func() float64 { return float64(rb.Stats().Reconnects) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_broker_pending_deliveries", Help: "Pub/sub deliveries received from Redis and not yet handed to local subscribers."},
				func() float64 { return float64(rb.Stats().Pending) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_broker_channels", Help: "Channels this node is subscribed to in Redis (the cluster bus's two included)."},
				func() float64 { return float64(rb.Stats().Channels) }),
		)
	}
	return mh
}

// feedLagCollector reports how far the change feed trails the store: the
// revisions from the first change it has not broadcast yet to the store's
// head (0 when it has broadcast everything). Revisions without a change-log
// entry (collection creation) do not count as lag.
type feedLagCollector struct {
	st   store.Store
	feed *stream.Feed
}

var (
	feedLagDesc = prometheus.NewDesc("tandem_change_feed_lag_revisions",
		"Store revisions committed but not yet broadcast by this node's change feed.", nil, nil)
	storeRevisionDesc = prometheus.NewDesc("tandem_store_revision",
		"Newest committed store revision (shared by every node on one database).", nil, nil)
)

func (c *feedLagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- feedLagDesc
	ch <- storeRevisionDesc
}

// Collect reads the store; when it cannot be read the samples are left out
// (readiness reports that).
func (c *feedLagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	last := c.feed.Last()
	head, err := c.st.Revision(ctx)
	if err != nil {
		return
	}
	lag := int64(0)
	if head > last {
		cs, err := c.st.Changes(ctx, last, 1)
		switch {
		case err != nil:
			lag = head - last
		case len(cs) > 0:
			lag = max(0, head-cs[0].Revision+1)
		}
	}
	ch <- prometheus.MustNewConstMetric(storeRevisionDesc, prometheus.GaugeValue, float64(head))
	ch <- prometheus.MustNewConstMetric(feedLagDesc, prometheus.GaugeValue, float64(lag))
}
