// Package quota counts what clients hold at once — connections per client
// address, subscriptions per principal and server-wide — and refuses what
// would take a count past its limit. It knows nothing of HTTP or
// WebSocket: callers choose the keys and turn its errors into answers (the
// errors carry a store code, so the one error table maps them).
package quota

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// RetryHint is how long a refused client is told to wait before trying
// again (HTTP Retry-After). A slot frees when some holder lets go, which no
// delay predicts; the hint only keeps clients out of a tight retry loop.
const RetryHint = 5 * time.Second

// Limit describes one cap.
type Limit struct {
	// Name identifies the cap in errors and metrics, e.g. the flag
	// that sets it ("max-conns-per-ip").
	Name string
	// What is counted, for errors: "subscriptions per principal".
	What string
	// Max is the most a key may hold; 0 or less means unlimited.
	Max int
	// Code is the error code of a refusal; "" means
	// store.CodeTooManyRequests (429). A server-wide cap uses
	// store.CodeUnavailable (503): the client did nothing wrong.
	Code store.Code
}

// Error is an Acquire refused because the key holds Limit.Max already. It
// unwraps to a *store.Error with Limit.Code and the same message.
type Error struct {
	Limit Limit
}

func (e *Error) Error() string {
	return fmt.Sprintf("limit %s reached: at most %d %s", e.Limit.Name, e.Limit.Max, e.Limit.What)
}

// Unwrap returns the *store.Error the error table maps.
func (e *Error) Unwrap() error {
	code := e.Limit.Code
	if code == "" {
		code = store.CodeTooManyRequests
	}
	return &store.Error{Code: code, Message: e.Error()}
}

// Counter counts holders per key, up to Limit.Max each. A key is forgotten
// when its count returns to zero, so memory follows what is held, not how
// many keys were ever seen. Goroutine-safe; a nil or unlimited Counter
// grants everything and counts nothing.
type Counter struct {
	limit   Limit
	refused atomic.Uint64

	mu    sync.Mutex
	held  map[string]int
	total int // the sum of held
}

// New returns a Counter enforcing l.
func New(l Limit) *Counter {
	return &Counter{limit: l, held: map[string]int{}}
}

// Limit returns the cap the counter enforces.
func (c *Counter) Limit() Limit {
	if c == nil {
		return Limit{}
	}
	return c.limit
}

func (c *Counter) unlimited() bool { return c == nil || c.limit.Max <= 0 }

// Acquire takes one unit for key. release gives it back; calling it again
// does nothing. Errors: *Error when key holds Limit.Max already.
func (c *Counter) Acquire(key string) (release func(), err error) {
	if c.unlimited() {
		return noop, nil
	}
	c.mu.Lock()
	n := c.held[key]
	if n >= c.limit.Max {
		c.mu.Unlock()
		c.refused.Add(1)
		return nil, &Error{Limit: c.limit}
	}
	c.held[key] = n + 1
	c.total++
	c.mu.Unlock()
	var once atomic.Bool
	return func() {
		if once.Swap(true) {
			return
		}
		c.mu.Lock()
		if n := c.held[key] - 1; n > 0 {
			c.held[key] = n
		} else {
			delete(c.held, key)
		}
		c.total--
		c.mu.Unlock()
	}, nil
}

// Held returns what key holds (0 for an unlimited counter).
func (c *Counter) Held(key string) int {
	if c.unlimited() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[key]
}

// Keys returns how many keys hold something.
func (c *Counter) Keys() int {
	if c.unlimited() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// Total returns what all keys hold together.
func (c *Counter) Total() int {
	if c.unlimited() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Refused returns how many Acquires the counter has refused.
func (c *Counter) Refused() uint64 {
	if c == nil {
		return 0
	}
	return c.refused.Load()
}

func noop() {}

// Caps are the limits on what clients hold at once. A nil *Caps, or a nil
// field, limits nothing.
type Caps struct {
	// ConnsPerIP counts the open streams of each client address (IPKey):
	// WebSocket connections, SSE streams and waiting long-polls.
	ConnsPerIP *Counter
	// SubsPerPrincipal counts subscriptions per principal (ClientKey)
	// across all its connections and streams.
	SubsPerPrincipal *Counter
	// Subs counts subscriptions server-wide (one key).
	Subs *Counter
	// QueuedBytes is the server-wide bound on the bytes queued for all
	// clients (--max-queued-bytes): while it is exhausted, no new
	// subscription is admitted.
	QueuedBytes *hub.Budget
}

// Conn takes a connection slot for the client at remoteAddr ("host:port").
// Errors: *Error from ConnsPerIP.
func (c *Caps) Conn(remoteAddr string) (release func(), err error) {
	if c == nil {
		return noop, nil
	}
	return c.ConnsPerIP.Acquire(IPKey(remoteAddr))
}

// Subscription takes a subscription slot for principal (a ClientKey) and
// one of the server's, both or neither, unless the server's queued bytes
// are at their budget. Errors: *Error (503) when QueuedBytes is exhausted,
// else from SubsPerPrincipal, else from Subs.
func (c *Caps) Subscription(principal string) (release func(), err error) {
	if c == nil {
		return noop, nil
	}
	if b := c.QueuedBytes; b != nil && b.Exhausted() {
		return nil, queuedBytesError(b.Max())
	}
	mine, err := c.SubsPerPrincipal.Acquire(principal)
	if err != nil {
		return nil, err
	}
	all, err := c.Subs.Acquire("")
	if err != nil {
		mine()
		return nil, err
	}
	return func() { all(); mine() }, nil
}

// IPKey is the client address a per-IP cap counts, from a "host:port" peer
// address: the host, except that an IPv6 address counts by its /64 prefix
// (the block one site is normally given, so that one client cannot spread
// over 2^64 addresses). An address without a port counts as a whole.
func IPKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String() // also for an IPv4-mapped IPv6 address
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// ClientKey is whom a per-principal cap counts: the authenticated
// principal's scope (auth.Principal.Scope, e.g. "jwt:alice"), or, for an
// anonymous one (scope ""), its client address (IPKey).
func ClientKey(scope, remoteAddr string) string {
	if scope != "" {
		return scope
	}
	return "ip:" + IPKey(remoteAddr)
}

// queuedBytesError is the refusal of a new subscription while the bytes
// queued for all clients together are at the server's budget (max, from
// --max-queued-bytes): a server-wide limit, so a 503 (store.CodeUnavailable).
func queuedBytesError(max int64) error {
	return &Error{Limit: Limit{Name: "max-queued-bytes", What: "bytes queued for all clients together; retry shortly", Max: int(max), Code: store.CodeUnavailable}}
}
