package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/cluster"
	"github.com/tandemhq/tandem/internal/console"
	"github.com/tandemhq/tandem/internal/httpapi"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/ratelimit"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/postgres"
	"github.com/tandemhq/tandem/internal/store/sqlite"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/webhook"
	"github.com/tandemhq/tandem/internal/wire"
	"github.com/tandemhq/tandem/internal/wsapi"
)

var (
	_ app.WebhookEncoder  = wire.Frames{}
	_ app.ResourceEncoder = wire.Frames{}
)

// serve runs the server until ctx is cancelled, then shuts down gracefully.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	if cfg.MaxScan < 1000 {
		return fmt.Errorf("--max-scan %d: at least 1000 (a page holds up to 1000 resources)", cfg.MaxScan)
	}
	if cfg.WSWriters < 0 {
		return fmt.Errorf("--ws-writers %d: must not be negative (0: one per CPU)", cfg.WSWriters)
	}
	if cfg.WSWriteDelay < 0 || cfg.WSWriteDelay > time.Second {
		return fmt.Errorf("--ws-write-delay %s: must be from 0 to 1s", cfg.WSWriteDelay)
	}
	if cfg.WSReaders != "epoll" && cfg.WSReaders != "goroutine" {
		return fmt.Errorf("--ws-readers %q: use epoll or goroutine", cfg.WSReaders)
	}
	if err := checkProtectedMode(cfg); err != nil {
		return err
	}
	if err := checkBackends(cfg); err != nil {
		return err
	}
	if err := checkWebhookFlags(cfg); err != nil {
		return err
	}
	if err := checkDebugAddr(cfg.DebugAddr); err != nil {
		return err
	}
	if cfg.ResourceCache < 0 {
		return fmt.Errorf("--resource-cache-bytes %d: must be 0 (off) or more", cfg.ResourceCache)
	}
	if cfg.MaxBatchOps < 1 || cfg.MaxBatchOps > store.MaxBatchOps {
		return fmt.Errorf("--max-batch-ops %d: must be from 1 to %d", cfg.MaxBatchOps, store.MaxBatchOps)
	}
	authn, err := cfg.authenticator(logger)
	if err != nil {
		return err
	}
	// The --jwks-url refresher stops before serve returns.
	jwksDone := make(chan struct{})
	jwksCtx, stopJWKS := context.WithCancel(ctx)
	go func() {
		defer close(jwksDone)
		authn.RunJWKSRefresh(jwksCtx)
	}()
	defer func() { stopJWKS(); <-jwksDone }()
	st, desc, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := currentBuild()
	registerBuildInfo(reg, build)
	tp, stopTracing, err := tracing(ctx, getenv)
	if err != nil {
		return err
	}
	if stopTracing != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := stopTracing(sctx); err != nil {
				logger.Warn("flushing traces failed", "err", err)
			}
		}()
	}
	asyncVal, err := specval.LoadAsyncAPI()
	if err != nil {
		return err
	}
	h := hub.New(hub.Options{})
	// Every frame the engines encode; under --strict each is checked
	// against spec/asyncapi.yaml.
	frames := wire.Frames{Logger: logger}
	if cfg.Strict {
		frames.Validate = asyncVal.ValidateServerFrame
	}
	feedOpts := stream.FeedOptions{Frames: frames, Logger: logger}
	if tp != nil {
		feedOpts.Tracer = tp.Tracer("github.com/tandemhq/tandem/internal/stream")
	}
	feed, err := stream.NewFeed(ctx, st, h, feedOpts)
	if err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	registerHubMetrics(reg, h, feed)
	ns, err := cfg.namespaces()
	if err != nil {
		return err
	}
	br, brokerDesc, err := openBroker(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer br.Close()
	channels := &stream.Channels{Broker: br, Hub: h, Logger: logger, Frames: frames, PresenceTTL: cfg.PresenceTTL, PresenceBatchWindow: cfg.PresenceBatch}
	brokerHandler := registerBackendMetrics(reg, st, feed, br, channels)
	node := nodeName()
	// Several nodes share a Redis broker: the connection API's commands
	// reach each of them over it. One node (the memory broker) needs none.
	var bus *cluster.Bus
	if isRedisURL(cfg.Broker) {
		bus = cluster.New(br, node, 0, logger)
		brokerHandler = bus.Handler(brokerHandler)
	}
	brokerCtx, stopBroker := context.WithCancel(context.Background())
	brokerDone := make(chan struct{})
	go func() {
		defer close(brokerDone)
		if err := br.Run(brokerCtx, brokerHandler); err != nil && brokerCtx.Err() == nil {
			logger.Error("broker stopped", "err", err)
		}
	}()
	defer func() { stopBroker(); <-brokerDone }()
	resources := &stream.Resources{Store: st, Hub: h, Feed: feed, Frames: frames, MaxScan: cfg.MaxScan}
	// One budget for every byte queued for clients (WebSocket and SSE).
	budget := hub.NewBudget(cfg.MaxQueuedBytes)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_queued_bytes", Help: "Bytes queued for all WebSocket and SSE clients (bounded by --max-queued-bytes)."},
		func() float64 { return float64(budget.Used()) }))
	// draining is closed when shutdown starts: SSE streams and long-polls
	// answer with their cursors at once instead of holding the drain.
	draining := make(chan struct{})
	origins := httpapi.Origins(splitList(cfg.AllowedOrigins))
	caps := cfg.caps()
	caps.QueuedBytes = budget
	registerCapMetrics(reg, caps)
	sender := webhook.NewSender(webhook.Options{AllowPrivate: cfg.WebhookAllowPrivate, UserAgent: "Tandem-Webhooks/" + build.Version, Logger: logger})
	defer sender.Close()
	hookOpts, err := hookOptions(ctx, cfg, ns, reg, logger)
	if err != nil {
		return err
	}
	if hc, ok := hookOpts.Caller.(*webhook.HookClient); ok {
		defer hc.Close()
	}
	appOpts := app.Options{Logger: logger, Node: node, Hooks: hookOpts, MaxScan: cfg.MaxScan, MaxBatchOps: cfg.MaxBatchOps, SchemaCheckTimeout: cfg.SchemaCheck,
		ResourceEncoder: frames, ResourceCache: app.ResourceCacheOptions{Bytes: cfg.ResourceCache},
		Realtime: app.Realtime{Resources: resources, Channels: channels, Namespaces: ns, Caps: caps},
		Webhooks: app.WebhookOptions{
			Sender: sender, Encoder: frames, Metrics: webhook.NewMetrics(reg),
			Timeout: cfg.WebhookTimeout, FailureWindow: cfg.WebhookFailureWindow, RetryMin: cfg.WebhookRetryMin, RetryMax: cfg.WebhookRetryMax,
			LeaseTTL: cfg.WebhookLease, SecretGrace: cfg.WebhookSecretGrace, Max: cfg.MaxWebhooks,
		}}
	if bus != nil {
		appOpts.Cluster = bus
	}
	a := app.New(st, appOpts)
	ws := wsapi.New(wsapi.Config{
		App:       a,
		Validator: asyncVal, Logger: logger, Registry: reg, Strict: cfg.Strict,
		MaxFrameBytes: cfg.MaxFrameBytes, QueueBytes: cfg.QueueBytes, Budget: budget, WriteWait: cfg.WriteTimeout,
		PingInterval: cfg.PingInterval, PongWait: 2 * cfg.PingInterval, BookmarkInterval: cfg.BookmarkInterval,
		CheckOrigin: origins.CheckOrigin,
		FrameRate:   cfg.RateLimit, FrameBurst: cfg.RateBurst,
		Auth: authn, AuthTimeout: cfg.AuthTimeout,
		ReaderGoroutines: cfg.WSReaders == "goroutine",
		WriteDelay:       cfg.WSWriteDelay,
		WriteConcurrency: cfg.WSWriters,
		Caps:             caps,
	})
	a.AttachConnections(ws)
	registerResourceCacheMetrics(reg, a)
	if bus != nil {
		busCtx, stopBus := context.WithCancel(context.Background())
		busDone := make(chan struct{})
		go func() {
			defer close(busDone)
			if err := bus.Run(busCtx, a.HandleClusterCommand); err != nil && busCtx.Err() == nil {
				logger.Error("cluster bus stopped", "err", err)
			}
		}()
		defer func() { stopBus(); <-busDone }()
	}
	// The console (/), /docs/asyncapi and /asyncapi.json: exact paths, so
	// every other path still gets the API router's 404 problem.
	mounts := console.Routes()
	mounts["GET /v1/ws"] = ws
	handler, err := httpapi.NewHandler(httpapi.Config{
		App: a, Logger: logger, Registry: reg, Strict: cfg.Strict, MaxBodyBytes: cfg.MaxBodyBytes,
		Ready:       readiness(st, br, logger),
		SSE:         httpapi.SSEConfig{Heartbeat: cfg.SSEHeartbeat, Bookmark: cfg.BookmarkInterval, QueueBytes: cfg.QueueBytes, Budget: budget, WriteWait: cfg.WriteTimeout},
		Draining:    draining,
		ReadTimeout: cfg.ReadTimeout,
		Mounts:      mounts,
		Origins:     origins,
		RateLimit:   &ratelimit.Limiter{Rate: cfg.RateLimit, Burst: cfg.RateBurst},
		Auth:        authn,
		Caps:        caps,
		AuthCookie:  cfg.AuthCookie,
		AccessLog:   accessLog(cfg, logger),
		Tracer:      tp,
	})
	if err != nil {
		return err
	}
	feedCtx, stopFeed := context.WithCancel(context.Background())
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		_ = feed.Run(feedCtx)
	}()
	defer func() { stopFeed(); <-feedDone }()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		ln.Close()
		return errors.New("--tls-cert and --tls-key go together")
	}
	scheme := "http"
	serveErr := make(chan error, 1)
	if cfg.TLSCert != "" {
		scheme = "https"
		go func() { serveErr <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	if cfg.DebugAddr != "" {
		stopDebug, err := debugServer(cfg.DebugAddr, reg, logger)
		if err != nil {
			_ = srv.Close()
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			stopDebug(sctx)
		}()
	}
	addr := ln.Addr().String()
	logger.Info("tandem listening", "addr", addr, "url", scheme+"://"+addr, "docs", scheme+"://"+addr+"/docs/", "store", desc, "broker", brokerDesc, "auth", cfg.authConfigured(), "version", build.Version)

	compactDone := make(chan struct{})
	compactCtx, stopCompact := context.WithCancel(context.Background())
	go func() {
		defer close(compactDone)
		compactLoop(compactCtx, st, cfg.ChangeLogRetain, cfg.CompactInterval, logger)
	}()
	defer func() { stopCompact(); <-compactDone }()

	// Webhook delivery stops before the store closes; its leases are
	// released so that another node takes over at once.
	hooksDone := make(chan struct{})
	hooksCtx, stopHooks := context.WithCancel(context.Background())
	go func() {
		defer close(hooksDone)
		_ = a.RunWebhooks(hooksCtx)
	}()
	defer func() { stopHooks(); <-hooksDone }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	close(draining) // SSE streams and long-polls answer with their cursors now
	// Hijacked WebSockets are not tracked by http.Server: close them with
	// 1001 (after flushing what they have queued) alongside the HTTP drain.
	wsDone := make(chan error, 1)
	go func() { wsDone <- ws.Shutdown(sctx) }()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("graceful shutdown incomplete", "err", err)
		_ = srv.Close()
	}
	if err := <-wsDone; err != nil {
		logger.Warn("websocket shutdown incomplete", "err", err)
	}
	_ = h.Shutdown(sctx)
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// accessLog is the access log's logger (nil: --access-log=false).
func accessLog(cfg serveConfig, logger *slog.Logger) *slog.Logger {
	if !cfg.AccessLog {
		return nil
	}
	return logger
}

// openStore opens the configured store and describes it for the log.
func openStore(ctx context.Context, cfg serveConfig) (store.Store, string, error) {
	path := cfg.Store
	switch {
	case path == "":
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, "", fmt.Errorf("data dir: %w", err)
		}
		path = filepath.Join(cfg.DataDir, "tandem.db")
	case strings.HasPrefix(path, "sqlite://"):
		path = strings.TrimPrefix(path, "sqlite://")
	case isPostgresDSN(path):
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := postgres.Open(octx, path, postgres.Options{})
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL store %s: %w", redactDSN(path), err)
		}
		return st, "postgres:" + redactDSN(path), nil
	case strings.Contains(path, "://"):
		return nil, "", fmt.Errorf("--store %q: unsupported store; use a SQLite file path or postgres://user:password@host:port/db", redactDSN(path))
	}
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return nil, "", fmt.Errorf("open SQLite store %s: %w", path, err)
	}
	return st, "sqlite:" + path, nil
}

// redactDSN hides a password in a connection URL.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			return dsn[:i+3] + "…@" + dsn[at+1:]
		}
	}
	return dsn
}

// compactLoop trims the change log to the newest retain entries.
func compactLoop(ctx context.Context, st store.Store, retain int64, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := st.Revision(ctx)
		if err != nil || rev <= retain {
			continue
		}
		if err := st.Compact(ctx, rev-retain); err != nil && ctx.Err() == nil {
			log.Warn("change log compaction failed", "err", err)
		}
	}
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// registerHubMetrics exports the hub's counters and the change feed's lag.
func registerHubMetrics(reg prometheus.Registerer, h *hub.Hub, feed *stream.Feed) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_hub_broadcasts_total", Help: "Broadcasts (one encoded event to one key)."},
			func() float64 { return float64(h.Stats().Broadcasts) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_hub_deliveries_total", Help: "Events handed to subscribers."},
			func() float64 { return float64(h.Stats().Deliveries) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_hub_overflows_total", Help: "Events refused by full subscriber queues."},
			func() float64 { return float64(h.Stats().Overflows) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_hub_keys", Help: "Subscription keys with at least one local subscriber."},
			func() float64 { return float64(h.Stats().Keys) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_change_feed_revision", Help: "Newest store revision broadcast by the change feed."},
			func() float64 { return float64(feed.Last()) }),
	)
}

// registerResourceCacheMetrics exports the resource cache's counters.
func registerResourceCacheMetrics(reg prometheus.Registerer, a *app.App) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_resource_cache_hits_total", Help: "Resource GETs answered from the resource cache."},
			func() float64 { return float64(a.ResourceCacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tandem_resource_cache_misses_total", Help: "Resource GETs that read the store (0 while the cache is off)."},
			func() float64 { return float64(a.ResourceCacheStats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_resource_cache_bytes", Help: "Bytes the resource cache's entries are charged (at most --resource-cache-bytes)."},
			func() float64 { return float64(a.ResourceCacheStats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tandem_resource_cache_entries", Help: "Resources in the resource cache."},
			func() float64 { return float64(a.ResourceCacheStats().Entries) }),
	)
}

// caps are the connection and subscription caps WebSocket, SSE and
// long-poll share. The server-wide cap answers 503, not 429: reaching it
// is no client's fault, and another node may have room.
func (c serveConfig) caps() *quota.Caps {
	return &quota.Caps{
		ConnsPerIP:       quota.New(quota.Limit{Name: "max-conns-per-ip", What: "open connections (WebSocket, SSE, long-poll) per client IP", Max: c.MaxConnsPerIP}),
		SubsPerPrincipal: quota.New(quota.Limit{Name: "max-subscriptions-per-principal", What: "subscriptions per principal across its connections (per client IP when anonymous)", Max: c.MaxSubsPerPrincipal}),
		Subs:             quota.New(quota.Limit{Name: "max-subscriptions", What: "subscriptions on this server; retry later or on another node", Max: c.MaxSubscriptions, Code: store.CodeUnavailable}),
	}
}

// registerCapMetrics exports what each cap counts and how often it refused
// a client.
func registerCapMetrics(reg prometheus.Registerer, caps *quota.Caps) {
	for _, c := range []*quota.Counter{caps.ConnsPerIP, caps.SubsPerPrincipal, caps.Subs} {
		labels := prometheus.Labels{"limit": c.Limit().Name}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tandem_cap_held", Help: "Connections or subscriptions a cap counts now, by limit (0 when the cap is off).", ConstLabels: labels,
			}, func() float64 { return float64(c.Total()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "tandem_cap_refusals_total", Help: "Connections and subscriptions refused by a cap, by limit.", ConstLabels: labels,
			}, func() float64 { return float64(c.Refused()) }),
		)
	}
}

// authConfigured reports whether any authentication is configured.
func (c serveConfig) authConfigured() bool {
	return c.JWTSecret != "" || c.JWKSFile != "" || c.JWKSURL != "" || c.APIKeysFile != ""
}

// checkWebhookFlags refuses webhook settings that cannot work: a zero or
// negative duration or cap, a backoff whose maximum is below its minimum,
// or a lease so short that renewing it would be most of the store's work.
func checkWebhookFlags(c serveConfig) error {
	for _, d := range []struct {
		name     string
		v, least time.Duration
	}{
		{"webhook-timeout", c.WebhookTimeout, time.Millisecond},
		{"webhook-failure-window", c.WebhookFailureWindow, time.Millisecond},
		{"webhook-retry-min", c.WebhookRetryMin, time.Millisecond},
		{"webhook-retry-max", c.WebhookRetryMax, max(c.WebhookRetryMin, time.Millisecond)},
		{"webhook-lease", c.WebhookLease, 300 * time.Millisecond},
		{"webhook-secret-grace", c.WebhookSecretGrace, time.Millisecond},
	} {
		if d.v < d.least {
			return fmt.Errorf("--%s %v: must be at least %v", d.name, d.v, d.least)
		}
	}
	if c.MaxWebhooks < 1 {
		return fmt.Errorf("--max-webhooks %d: must be at least 1", c.MaxWebhooks)
	}
	return nil
}

// checkProtectedMode refuses to expose an unauthenticated server beyond
// loopback unless --insecure says that is intended.
func checkProtectedMode(c serveConfig) error {
	if c.authConfigured() || c.Insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", c.Addr, err)
	}
	if isLoopback(host) {
		return nil
	}
	return fmt.Errorf(`refusing to listen on %s without authentication (protected mode).
Anyone who can reach this address could read and change every resource and channel.
Either:
  - keep the default loopback address (--addr 127.0.0.1:8080),
  - configure authentication (--jwt-secret, --jwks-file, --jwks-url or --api-keys-file), or
  - pass --insecure if this network is trusted`, c.Addr)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// hookOptions builds the hooks' caller and the connect hook from the
// flags, after checking every hook URL. Errors: a bad hook setting or
// URL, hooks without --hook-secret.
func hookOptions(ctx context.Context, cfg serveConfig, ns app.Namespaces, reg prometheus.Registerer, logger *slog.Logger) (app.HookOptions, error) {
	connect, err := cfg.Hooks.config(app.HookConnect)
	if err != nil {
		return app.HookOptions{}, err
	}
	var secrets [][]byte
	for _, s := range splitList(cfg.Hooks.Secret) {
		k, err := app.SecretKey(s)
		if err != nil {
			return app.HookOptions{}, fmt.Errorf("--hook-secret: %w", err)
		}
		secrets = append(secrets, k)
	}
	hc := webhook.NewHookClient(webhook.HookOptions{Secrets: secrets, AllowPrivate: cfg.Hooks.Private,
		UserAgent: "Tandem-Hooks/" + currentBuild().Version, Logger: logger})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	some, err := checkHookURLs(cctx, &cfg.Hooks, connect, ns, hc.CheckURL)
	if err != nil || !some {
		hc.Close()
		return app.HookOptions{}, err // no hook: no caller
	}
	spec, err := specval.LoadOpenAPI()
	if err != nil {
		hc.Close()
		return app.HookOptions{}, err
	}
	hc.SetValidator(spec.ValidateSchema)
	return app.HookOptions{Caller: hc, Metrics: webhook.NewHookMetrics(reg), Connect: connect,
		MaxConcurrent: cfg.Hooks.MaxConc, MaxQueued: queued(cfg.Hooks.MaxQueue)}, nil
}

// nodeName names this node: its host name and a random suffix (several
// nodes may run on one host).
func nodeName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "tandem"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return h + "-" + hex.EncodeToString(b[:])
}

// queued maps --hook-max-queued to app.HookOptions.MaxQueued (0 there
// means the default; here it means that no call waits).
func queued(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
