package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wsapi"
)

// serveConfig is everything `tandem serve` can be told.
type serveConfig struct {
	Addr             string
	DataDir          string
	Store            string
	Broker           string
	RedisPrefix      string
	Strict           bool
	LogLevel         string
	LogFormat        string
	AccessLog        bool
	DebugAddr        string
	MaxBodyBytes     int64
	MaxScan          int
	MaxBatchOps      int
	ChangeLogRetain  int64
	ShutdownTimeout  time.Duration
	ConfigFile       string
	MaxFrameBytes    int64
	QueueBytes       int
	MaxQueuedBytes   int64
	ResourceCache    int64
	ReadTimeout      time.Duration
	SchemaCheck      time.Duration
	WriteTimeout     time.Duration
	PingInterval     time.Duration
	WSReaders        string
	WSWriteDelay     time.Duration
	WSWriters        int
	BookmarkInterval time.Duration
	CompactInterval  time.Duration
	SSEHeartbeat     time.Duration
	PresenceTTL      time.Duration
	PresenceBatch    time.Duration

	// Channel defaults, overridden per namespace by the YAML "namespaces" mapping.
	ChannelHistory     int
	ChannelHistoryTTL  time.Duration
	ChannelPresence    bool
	ChannelPublish     bool
	ChannelMaxMessage  int
	namespaceOverrides map[string]map[string]any

	// Security.
	Insecure        bool
	AllowedOrigins  string
	TLSCert         string
	TLSKey          string
	JWTSecret       string
	JWKSFile        string
	JWKSURL         string
	JWKSRefresh     time.Duration
	JWTAudience     string
	JWTIssuer       string
	APIKeysFile     string
	AnonymousGrants string
	AuthCookie      string
	AuthTimeout     time.Duration
	JWTLeeway       time.Duration
	RateLimit       float64
	RateBurst       int
	// Caps (0: unlimited).
	MaxConnsPerIP       int
	MaxSubsPerPrincipal int
	MaxSubscriptions    int

	// Hooks (hookcfg.go).
	Hooks hookFlags

	// Webhooks.
	WebhookAllowPrivate  bool
	WebhookTimeout       time.Duration
	WebhookFailureWindow time.Duration
	WebhookRetryMin      time.Duration
	WebhookRetryMax      time.Duration
	WebhookLease         time.Duration
	WebhookSecretGrace   time.Duration
	MaxWebhooks          int
}

// flagSet declares the serve flags. Each flag name is also its YAML key and,
// upper-cased with '-' → '_' behind TANDEM_, its environment variable.
func (c *serveConfig) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tandem serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	fs.StringVar(&c.DataDir, "data-dir", "./tandem-data", "directory for the embedded SQLite database")
	fs.StringVar(&c.Store, "store", "", "store: empty for SQLite in --data-dir, a SQLite file path, or postgres://user:password@host:port/db (also postgresql://) for PostgreSQL, which several nodes can share")
	fs.StringVar(&c.Broker, "broker", "memory", "channel broker: memory (one node) or redis://[user:password@]host:port/db (rediss:// for TLS) to share channels and presence between nodes; needs a postgres:// --store")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "tandem:", "prefix of every Redis key and pub/sub channel: the nodes of one cluster share it, another cluster on the same Redis needs its own")
	fs.BoolVar(&c.Strict, "strict", false, "validate every response against the API description live")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.AccessLog, "access-log", true, "log a line per request (method, route, status, duration, bytes, subject, request id) and per WebSocket or SSE stream opening and closing, at info")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "loopback address (host:port) serving /debug/pprof/ and /metrics on a listener of their own (off when empty; non-loopback addresses are refused)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest accepted request body in bytes")
	fs.IntVar(&c.MaxScan, "max-scan", store.DefaultMaxScan, "most resources one list request (or one page of a filtered snapshot) examines; a filter or order that needs more answers 422 needs-index (declare an index)")
	fs.IntVar(&c.MaxBatchOps, "max-batch-ops", app.DefaultMaxBatchOps, fmt.Sprintf("most operations one POST /v1/batch takes (413 beyond; 1 to %d)", store.MaxBatchOps))
	fs.Int64Var(&c.ChangeLogRetain, "change-log-retain", 100000, "how many changes the change log keeps for resuming subscribers (older cursors get resync-required)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long graceful shutdown waits for requests to finish")
	fs.StringVar(&c.ConfigFile, "config", "", "optional YAML configuration file")
	fs.Int64Var(&c.MaxFrameBytes, "max-frame-bytes", 64<<10, "largest accepted WebSocket message (close 1009 beyond)")
	fs.IntVar(&c.QueueBytes, "queue-bytes", 1<<20, "outbound queue per connection in bytes (slow consumers are closed with 4008 beyond); snapshots and replays count against it too")
	fs.Int64Var(&c.ResourceCache, "resource-cache-bytes", app.DefaultResourceCacheBytes, "memory budget of the cache of encoded resources behind GET /v1/collections/{collection}/resources/{id} (0: off); on several nodes a read may see a write of another node only once this node's change feed delivered it (see docs/guarantees.md)")
	fs.Int64Var(&c.MaxQueuedBytes, "max-queued-bytes", 512<<20, "server-wide bound on the bytes queued for all WebSocket and SSE clients together: when reached, new subscriptions are refused with 503 and lagging clients are closed as slow consumers (0: no bound)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "how long one write to a WebSocket or SSE client may take; a client that does not take its bytes in time is closed as a slow consumer")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", 30*time.Second, "how long a request may take to send its body (408 beyond); SSE, long-poll and WebSocket streams are not affected (0: no limit)")
	fs.DurationVar(&c.SchemaCheck, "schema-check-timeout", app.DefaultSchemaCheckTimeout, "how long PATCH /v1/collections/{c} may spend checking the stored resources against a new schema (422 beyond, suggesting validate=new-writes-only)")
	fs.DurationVar(&c.PingInterval, "ping-interval", 25*time.Second, "WebSocket ping interval; a connection silent for twice this is dropped (with the epoll reader, at the first ping after that)")
	fs.DurationVar(&c.WSWriteDelay, "ws-write-delay", wsapi.DefaultWriteDelay, "shortest time between two socket writes to one WebSocket connection: events arriving sooner wait and go out together in one write (fewer system calls under load); a connection that was quiet for this long is written to at once, so it adds no latency at low rates (0: write as soon as anything is queued; at most 1s)")
	fs.IntVar(&c.WSWriters, "ws-writers", 0, "how many WebSocket connections are written to at once (0: one per CPU); a connection whose client does not read waits without holding one; fewer keeps REST and replies quick during a large fan-out, more delivers the fan-out sooner")
	fs.StringVar(&c.WSReaders, "ws-readers", "epoll", "how WebSocket connections are read: epoll (idle connections hold no goroutine; Linux, plain TCP) or goroutine (one blocked reader per connection)")
	fs.DurationVar(&c.SSEHeartbeat, "sse-heartbeat", 15*time.Second, "interval of SSE comment heartbeats")
	fs.DurationVar(&c.PresenceTTL, "presence-ttl", 45*time.Second, "presence lease; a member whose node stops renewing leaves after this")
	fs.DurationVar(&c.PresenceBatch, "presence-batch-window", stream.DefaultPresenceBatchWindow, "batch each channel's presence joins and leaves for this long (from the first of them) into one leave and one join frame; 0: one frame per join or leave, at once")
	fs.IntVar(&c.ChannelHistory, "channel-history", 100, "messages each channel keeps for resume and history (per namespace: history)")
	fs.DurationVar(&c.ChannelHistoryTTL, "channel-history-ttl", 10*time.Minute, "how long channel messages are kept (per namespace: history-ttl)")
	fs.BoolVar(&c.ChannelPresence, "channel-presence", true, "enable presence on channels (per namespace: presence)")
	fs.BoolVar(&c.ChannelPublish, "channel-publish", true, "let clients publish to channels (per namespace: publish)")
	fs.IntVar(&c.ChannelMaxMessage, "channel-max-message-bytes", 64<<10, "largest channel message data (per namespace: max-message-bytes)")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow listening on a non-loopback address without authentication (protected mode off)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed for WebSocket and CORS (\"*\" for any); same-origin is always allowed")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS and HTTP/2")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret for JWT bearer tokens (enables auth)")
	fs.StringVar(&c.JWKSFile, "jwks-file", "", "JWKS file with RS256/EdDSA public keys for JWT bearer tokens (enables auth)")
	fs.StringVar(&c.JWKSURL, "jwks-url", "", "URL of a JWKS with RS256/EdDSA public keys for JWT bearer tokens (enables auth; not with --jwks-file): https, or http on a loopback host; fetched at startup (failing it stops the server), every --jwks-refresh and, at most every 10s, when a token names an unknown kid")
	fs.DurationVar(&c.JWKSRefresh, "jwks-refresh", auth.DefaultJWKSRefresh, "how often --jwks-url is fetched again (a failed fetch keeps the previous keys); at least 1s")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "required JWT audience (aud)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "required JWT issuer (iss)")
	fs.StringVar(&c.APIKeysFile, "api-keys-file", "", "YAML file listing API keys with their grants (enables auth)")
	fs.StringVar(&c.AnonymousGrants, "anonymous-grants", "", "space-separated grants for requests without credentials when auth is enabled, e.g. \"read:channels/lobby/messages read:collections/news/**\"")
	fs.DurationVar(&c.JWTLeeway, "jwt-leeway", auth.DefaultLeeway, "clock skew tolerated for JWT exp/nbf")
	fs.StringVar(&c.AuthCookie, "auth-cookie", "", "cookie name that may carry the token for GET /v1/events and /v1/changes (EventSource cannot set headers)")
	fs.DurationVar(&c.AuthTimeout, "auth-timeout", 10*time.Second, "how long a WebSocket that may do nothing anonymously has to send an auth frame (close 4010 after)")
	fs.Float64Var(&c.RateLimit, "rate-limit", 100, "requests (REST) or frames (WebSocket) per second per client; 0 disables")
	fs.IntVar(&c.RateBurst, "rate-burst", 200, "burst size of the rate limit")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", 1000, "open WebSocket connections, SSE streams and waiting long-polls per client IP (IPv6: per /64), counted by TCP peer address, so behind a proxy all clients share one; 429 beyond; 0 disables")
	fs.IntVar(&c.MaxSubsPerPrincipal, "max-subscriptions-per-principal", 10000, "subscriptions (WebSocket and SSE topics) per authenticated subject across its connections, per client IP for anonymous callers; 429 beyond; 0 disables")
	fs.IntVar(&c.MaxSubscriptions, "max-subscriptions", 100000, "subscriptions (WebSocket and SSE topics) on this server; 503 beyond; 0 disables")
	fs.DurationVar(&c.CompactInterval, "compact-interval", time.Minute, "how often the change log is trimmed to --change-log-retain entries")
	fs.DurationVar(&c.BookmarkInterval, "bookmark-interval", 25*time.Second, "how often each subscription gets a bookmark with its current cursor")
	c.Hooks.register(fs)
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", false, "let webhooks target loopback, private, link-local and metadata addresses (refused by default: SSRF)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", 10*time.Second, "how long one webhook request may take")
	fs.DurationVar(&c.WebhookFailureWindow, "webhook-failure-window", 24*time.Hour, "how long a webhook may keep failing before it is paused (with its cursor)")
	fs.DurationVar(&c.WebhookRetryMin, "webhook-retry-min", time.Second, "first backoff after a failed webhook request (doubling, with jitter)")
	fs.DurationVar(&c.WebhookRetryMax, "webhook-retry-max", 10*time.Minute, "longest backoff between webhook retries (a receiver's Retry-After, up to an hour, wins)")
	fs.DurationVar(&c.WebhookLease, "webhook-lease", 15*time.Second, "delivery lease of a webhook on one node; another node takes over a dead node's webhooks within this and a third")
	fs.DurationVar(&c.WebhookSecretGrace, "webhook-secret-grace", 24*time.Hour, "how long a rotated-out webhook secret keeps signing")
	fs.IntVar(&c.MaxWebhooks, "max-webhooks", 100, "webhooks on this server (409 beyond)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tandem serve [flags]\n\nFlags (each also TANDEM_<NAME> in the environment, or <name>: in the --config YAML file):\n")
		fs.PrintDefaults()
	}
	return fs
}

func envName(flagName string) string {
	return "TANDEM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseServeConfig applies flags, then TANDEM_* variables for flags not
// given, then the YAML file for what is still unset. Errors: usageError for
// bad flags; a descriptive error for bad env values or config files.
func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	fs := c.flagSet(stderr)
	if err := fs.Parse(args); err != nil {
		return c, flagError(err)
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Errorf("tandem serve: unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var fromEnv []string
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			fromEnv = append(fromEnv, f.Name)
			if err := fs.Set(f.Name, v); err != nil {
				set["!"+f.Name] = true
			}
		}
	})
	for _, name := range fromEnv {
		if set["!"+name] {
			return c, fmt.Errorf("environment variable %s=%q is invalid for --%s", envName(name), getenv(envName(name)), name)
		}
		set[name] = true
	}
	if c.ConfigFile == "" {
		return c, nil
	}
	raw, err := os.ReadFile(c.ConfigFile)
	if err != nil {
		return c, fmt.Errorf("config file: %w", err)
	}
	values, nsRaw, err := parseConfigYAML(raw)
	if err != nil {
		return c, fmt.Errorf("config file %s: %w", c.ConfigFile, err)
	}
	c.namespaceOverrides = nsRaw
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil || k == "config" {
			return c, fmt.Errorf("config file %s: unknown key %q", c.ConfigFile, k)
		}
		if set[k] {
			continue
		}
		if err := fs.Set(k, values[k]); err != nil {
			return c, fmt.Errorf("config file %s: %s: %v", c.ConfigFile, k, err)
		}
	}
	return c, nil
}

// parseConfigYAML reads a YAML mapping of flag names to scalar values,
// plus an optional "namespaces" mapping of namespace → channel options.
// Errors: invalid YAML, a key given twice in one mapping (named, with its
// lines; YAML and JSON-style files alike), nested values elsewhere.
func parseConfigYAML(raw []byte) (map[string]string, map[string]map[string]any, error) {
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		if d := yamlDuplicateKey(err); d != "" {
			return nil, nil, fmt.Errorf("duplicate key: %s", d)
		}
		return nil, nil, fmt.Errorf("invalid YAML: %w", err)
	}
	out := make(map[string]string, len(doc))
	var ns map[string]map[string]any
	for k, v := range doc {
		if k == "namespaces" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, nil, fmt.Errorf("namespaces: expected a mapping of namespace names to options")
			}
			ns = map[string]map[string]any{}
			for name, opts := range m {
				om, ok := opts.(map[string]any)
				if !ok {
					return nil, nil, fmt.Errorf("namespaces.%s: expected a mapping of options", name)
				}
				ns[name] = om
			}
			continue
		}
		switch v.(type) {
		case map[string]any, []any:
			return nil, nil, fmt.Errorf("key %q: expected a scalar value", k)
		case nil:
			continue
		}
		out[k] = fmt.Sprint(v)
	}
	return out, ns, nil
}

// yamlDuplicateKey returns yaml.v3's report of a mapping key given twice
// (`line 2: mapping key "addr" already defined at line 1`), or "". The
// report quotes only the key, never a value.
func yamlDuplicateKey(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, m := range te.Errors {
			if strings.Contains(m, "mapping key") && strings.Contains(m, "already defined") {
				return m
			}
		}
	}
	return ""
}

// namespaces builds the channel options: flag defaults, then per-namespace
// overrides from the YAML file. Errors: unknown option, bad value.
func (c serveConfig) namespaces() (app.Namespaces, error) {
	def := app.ChannelOptions{
		History:         broker.HistoryOptions{Size: c.ChannelHistory, TTL: c.ChannelHistoryTTL},
		Presence:        c.ChannelPresence,
		ClientPublish:   c.ChannelPublish,
		MaxMessageBytes: c.ChannelMaxMessage,
	}
	ns := app.Namespaces{Default: def, ByName: map[string]app.ChannelOptions{}}
	if err := c.Hooks.globalHooks(&ns); err != nil {
		return ns, err
	}
	def = ns.Default
	for name, opts := range c.namespaceOverrides {
		if !stream.ValidChannel(name) || strings.Contains(name, ":") {
			return ns, fmt.Errorf("namespaces: %q is not a valid namespace name", name)
		}
		o := def
		hookSet := map[string]bool{}
		for k, v := range opts {
			s := fmt.Sprint(v)
			if l, ok := v.([]any); ok {
				parts := make([]string, len(l))
				for i, x := range l {
					parts[i] = fmt.Sprint(x)
				}
				s = strings.Join(parts, ",")
			}
			var err error
			switch k {
			case "history":
				o.History.Size, err = strconv.Atoi(s)
			case "history-ttl":
				o.History.TTL, err = time.ParseDuration(s)
			case "presence":
				o.Presence, err = strconv.ParseBool(s)
			case "publish":
				o.ClientPublish, err = strconv.ParseBool(s)
			case "max-message-bytes":
				o.MaxMessageBytes, err = strconv.Atoi(s)
			default:
				var ok bool
				if ok, err = namespaceHook(&o, k, s, hookSet); !ok {
					return ns, fmt.Errorf("namespaces.%s: unknown option %q (history, history-ttl, presence, publish, max-message-bytes, hook-subscribe, hook-publish, hook-rpc, hook-timeout, hook-on-error, hook-<name>-timeout, hook-<name>-on-error, rpc-methods)", name, k)
				}
			}
			if err != nil {
				return ns, fmt.Errorf("namespaces.%s.%s: %v", name, k, err)
			}
		}
		ns.ByName[name] = o
	}
	return ns, nil
}
