package wsapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/wire"
)

// Config configures the WebSocket server. Zero durations and sizes take
// the documented defaults.
type Config struct {
	// App runs every command of a connection (required).
	App       *app.App
	Validator *specval.AsyncAPI
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	// Strict validates every outbound frame the connection builds.
	Strict bool
	// MaxFrameBytes is the read limit (close 1009 beyond); default 64 KiB.
	MaxFrameBytes int64
	// QueueBytes bounds each connection's outbound queue; default 1 MiB.
	QueueBytes int
	// Budget, when set, bounds the bytes queued for all connections of the
	// server together: while it is exhausted, lagging connections overflow
	// (hub.NewQueueBudget) and app's caps (quota.Caps.QueuedBytes) refuse
	// new subscriptions with 503.
	Budget *hub.Budget
	// PingInterval between server pings; default 25 s. PongWait is how long
	// without a pong before the connection is dropped; default 60 s.
	PingInterval, PongWait time.Duration
	// WriteWait bounds every write; default 10 s.
	WriteWait time.Duration
	// WriteConcurrency is how many connections' writers may write to
	// their sockets at once (a writer whose socket is full waits without
	// a slot); default GOMAXPROCS. Fewer answers the rest of the server
	// (REST, replies) sooner during a large fan-out and costs less CPU per
	// delivery; more delivers the fan-out sooner.
	WriteConcurrency int
	// WriteDelay is the shortest time between two socket writes to one
	// connection: what is queued sooner waits for the rest of the window
	// and goes out in the same write. A connection idle for WriteDelay is
	// written to at once. 0: write whenever something is queued. cmd's
	// default is DefaultWriteDelay.
	WriteDelay time.Duration
	// BookmarkInterval between bookmarks; default 25 s (≤ 30 s promised).
	BookmarkInterval time.Duration
	// MaxSubscriptions per connection; default 1000.
	MaxSubscriptions int
	// Caps limit connections per client IP (refused before the upgrade);
	// nil: unlimited. The subscription caps are app's
	// (app.Realtime.Caps, refused in the subscribe reply).
	Caps *quota.Caps
	// CheckOrigin decides cross-origin upgrades; nil denies any Origin
	// whose host differs from the request's Host.
	CheckOrigin func(*http.Request) bool
	// FrameRate and FrameBurst limit client frames per connection (0: no
	// limit). An excess frame gets a 429 reply; a client that keeps going
	// past another burst of refusals is closed with 4029.
	FrameRate  float64
	FrameBurst int
	// Auth resolves credentials; nil means auth is not configured and
	// every connection may do everything.
	Auth Authenticator
	// AuthTimeout is how long a connection whose anonymous principal may
	// do nothing has to send an auth frame (close 4010 after); default 10 s.
	AuthTimeout time.Duration
	// ReaderGoroutines gives every connection a reader goroutine blocked
	// in read, as gorilla/websocket is normally used. By default (on
	// Linux, for plain TCP) idle connections are instead watched by one
	// epoll instance and read by a short-lived goroutine when data
	// arrives, which saves the ~4 KiB stack per idle connection. TLS
	// connections always get a reader goroutine.
	ReaderGoroutines bool
}

// Authenticator resolves credentials into principals (auth.Authenticator).
type Authenticator interface {
	// Resolve returns the principal of token ("" is anonymous). Errors:
	// auth.ErrInvalidToken.
	Resolve(token string) (auth.Principal, error)
	// Enabled reports whether credentials are configured at all.
	Enabled() bool
}

var _ Authenticator = (*auth.Authenticator)(nil)

// Server upgrades and serves WebSocket connections.
type Server struct {
	cfg      Config
	upgrader websocket.Upgrader
	// polledUpgrader is upgrader with a minimal read buffer, for
	// connections the poller reads (gorilla's reader is not used, but
	// gorilla allocates the buffer anyway).
	polledUpgrader websocket.Upgrader
	metrics        *metrics

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	wg      sync.WaitGroup
	poller  *poller // started with the first polled connection
	noPoll  bool    // the poller could not start: reader goroutines
	// renew renews the presence leases of every connection that joined;
	// pings and bookmarks make every connection's writer send a ping or
	// its bookmarks.
	renew, pings, bookmarks wheel
	// writers admits WriteConcurrency connections' writers to their
	// sockets at a time (see admission).
	writers chan struct{}
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.MaxFrameBytes == 0 {
		cfg.MaxFrameBytes = 64 << 10
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = 1 << 20
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.PongWait == 0 {
		cfg.PongWait = 60 * time.Second
	}
	if cfg.WriteWait == 0 {
		cfg.WriteWait = 10 * time.Second
	}
	if cfg.BookmarkInterval == 0 {
		cfg.BookmarkInterval = 25 * time.Second
	}
	if cfg.MaxSubscriptions == 0 {
		cfg.MaxSubscriptions = 1000
	}
	if cfg.WriteConcurrency <= 0 {
		cfg.WriteConcurrency = runtime.GOMAXPROCS(0)
	}
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = 10 * time.Second
	}
	s := &Server{cfg: cfg, conns: map[*conn]struct{}{}, metrics: newMetrics(cfg.Registry),
		writers: make(chan struct{}, cfg.WriteConcurrency)}
	s.renew = wheel{interval: func() time.Duration { return s.cfg.App.PresenceRenewInterval() },
		fire: func(c *conn, tick time.Duration) { c.renewPresence(tick) }}
	s.pings = wheel{interval: func() time.Duration { return s.cfg.PingInterval }, fire: (*conn).pingTick}
	s.bookmarks = wheel{interval: func() time.Duration { return s.cfg.BookmarkInterval }, fire: (*conn).bookmarkTick}
	s.upgrader = websocket.Upgrader{
		// Every connection keeps its read buffer for life, so it is small:
		// client frames are small, and larger ones are read through it.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     cfg.CheckOrigin,
		// Offered "bearer.<token>" subprotocols are read, never echoed.
		Subprotocols: []string{Protocol},
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"type":"https://tandem.dev/problems/websocket-upgrade","title":"WebSocket upgrade failed","status":` + itoa(status) + `,"detail":` + quote(reason.Error()) + `}`))
		},
	}
	s.polledUpgrader = s.upgrader
	s.polledUpgrader.ReadBufferSize = 16 // bufio's minimum
	return s
}

// ServeHTTP upgrades the request and serves the connection until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	handedOff := false
	defer func() {
		if !handedOff {
			s.wg.Done()
		}
	}()

	release, err := s.cfg.Caps.Conn(r.RemoteAddr)
	if err != nil {
		s.refuseCap(w, r, err)
		return
	}
	defer func() {
		if !handedOff {
			release()
		}
	}()
	principal, err := s.authenticate(r)
	if err != nil {
		s.refuse(w, err)
		return
	}
	id := newID()
	cr, hooked, ok := s.connect(w, r, id, principal)
	if !ok {
		return // refused by the connect hook
	}
	hw := &hijackWriter{ResponseWriter: w}
	up := &s.upgrader
	if s.pollable(r) {
		up = &s.polledUpgrader
	}
	ws, err := up.Upgrade(hw, r, nil)
	if err != nil {
		return // the upgrader already answered
	}
	c := newConn(s, ws, hw.conn, id, cr, hooked)
	if c.access = accesslog.From(r.Context()); c.access != nil {
		c.access.SetSubject(cr.Principal.Subject)
		c.access.Open("websocket")
	}
	c.onEnd = func() {
		s.metrics.connections.Dec()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		release()
		s.wg.Done()
	}
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.conns[c] = struct{}{}
	}
	// From here on Shutdown may close c, even before begin (end copes).
	pl := s.pollerLocked(c)
	s.mu.Unlock()
	s.metrics.connections.Inc()
	handedOff = true
	if pl != nil {
		c.begin()
		if err := c.watch(); err != nil {
			// epoll_ctl refused a live socket (out of kernel memory or
			// max_user_watches): the writer ends the connection.
			s.cfg.Logger.Error("websocket: cannot watch the connection", "err", err)
			c.closeWith(CloseInternal, "server overloaded; reconnect later", nil)
		}
	} else {
		// Serve from a goroutine of its own and return: net/http's
		// connection goroutine then ends, releasing its stack (grown by
		// the handler chain), the request and the 4 KiB buffers it holds
		// past the hijack. An idle connection costs about half as much
		// memory this way.
		go c.serve()
	}
	if closing {
		// Shutdown began after the check above: it does not know c.
		c.closeWith(CloseGoingAway, "server shutting down", nil)
	}
}

// pollable reports whether r's connection will most likely be polled: a
// plain TCP connection that was not refused epoll. Should it not be after
// all, gorilla reads it through its small buffer, correctly but slowly.
func (s *Server) pollable(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pollingLocked() && r.TLS == nil
}

// pollingLocked reports whether connections are read by the poller at all
// (s.mu held).
func (s *Server) pollingLocked() bool { return !s.cfg.ReaderGoroutines && !s.noPoll }

// pollerLocked returns the poller to watch c with, starting it if needed,
// or nil when c gets a reader goroutine (s.mu held).
func (s *Server) pollerLocked(c *conn) *poller {
	if !s.pollingLocked() {
		return nil
	}
	sc, ok := c.raw.Conn.(syscall.Conn)
	if !ok {
		return nil // TLS, or a wrapped connection
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	if s.poller == nil {
		if s.poller, err = newPoller(); err != nil {
			s.noPoll = true
			level := slog.LevelWarn
			if errors.Is(err, errors.ErrUnsupported) {
				level = slog.LevelDebug // not Linux: expected
			}
			s.cfg.Logger.Log(context.Background(), level, "websocket: no epoll; one reader goroutine per connection", "err", err)
			return nil
		}
	}
	c.rawConn, c.polled, c.poller = rc, true, s.poller
	c.parser.limit = s.cfg.MaxFrameBytes
	return s.poller
}

// authenticate resolves the credentials presented on the upgrade request:
// the Authorization or X-API-Key header, else a "bearer.<token>"
// subprotocol; none makes the connection anonymous (it may still send an
// auth frame). Errors: auth.ErrInvalidToken.
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	if s.cfg.Auth == nil {
		return auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()}, nil
	}
	tok, err := auth.TokenFrom(r.Header.Get("Authorization"), r.Header.Get("X-API-Key"), "")
	if err != nil {
		return auth.Principal{}, err
	}
	if tok == "" {
		tok = auth.TokenFromSubprotocols(websocket.Subprotocols(r))
	}
	return s.cfg.Auth.Resolve(tok)
}

// refuse answers an upgrade request whose credentials were rejected with
// a 401 problem (RFC 6750 challenge included).
func (s *Server) refuse(w http.ResponseWriter, err error) {
	p := wire.Problem(err)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="tandem", error="invalid_token"`)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// refuseCap answers an upgrade request over a connection cap with its
// problem (429) and a Retry-After hint, before upgrading: the client sees
// a failed handshake with that status.
func (s *Server) refuseCap(w http.ResponseWriter, r *http.Request, err error) {
	refuseUpgrade(w, r, err, strconv.Itoa(int(quota.RetryHint/time.Second)))
}

// refuseUpgrade answers an upgrade request with err's problem (instance:
// the path) before upgrading, with a Retry-After of retryAfter unless "".
func refuseUpgrade(w http.ResponseWriter, r *http.Request, err error, retryAfter string) {
	p := wire.Problem(err)
	inst := r.URL.Path
	p.Instance = &inst
	if id := accesslog.RequestID(r.Context()); id != "" {
		p.RequestId = &id
	}
	w.Header().Set("Content-Type", "application/problem+json")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Shutdown closes every connection with 1001 (after flushing what is
// queued) and waits for them to end or ctx to expire. Errors: ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeWith(CloseGoingAway, "server shutting down; reconnect and resume with your cursors", nil)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.mu.Lock()
		if pl := s.poller; pl != nil {
			s.poller = nil
			s.noPoll = true // closing: no new connection comes
			s.mu.Unlock()
			pl.stop()
		} else {
			s.mu.Unlock()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NumConnections returns the number of open connections.
func (s *Server) NumConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type metrics struct {
	connections   prometheus.Gauge
	subscriptions prometheus.Gauge
	framesIn      *prometheus.CounterVec
	framesOut     prometheus.Counter
	writes        prometheus.Counter
	slowClosed    prometheus.Counter
	invalid       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_ws_connections", Help: "Open WebSocket connections."}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_ws_subscriptions", Help: "Active WebSocket subscriptions."}),
		framesIn:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_ws_frames_in_total", Help: "Client frames received, by type."}, []string{"type"}),
		framesOut:     prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_ws_frames_out_total", Help: "Server frames sent."}),
		writes:        prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_ws_writes_total", Help: "Socket writes (each carries one or more coalesced frames)."}),
		slowClosed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_ws_slow_consumer_closes_total", Help: "Connections closed because their outbound queue overflowed."}),
		invalid:       prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_ws_invalid_frames_total", Help: "Client frames rejected by AsyncAPI validation."}),
	}
	reg.MustRegister(m.connections, m.subscriptions, m.framesIn, m.framesOut, m.writes, m.slowClosed, m.invalid)
	return m
}
