// Package webhook is the outbound HTTP adapter of webhooks: it implements
// app.WebhookSender with one signed POST per attempt (Standard Webhooks
// headers, https://www.standardwebhooks.com/) and refuses private targets
// twice, when a URL is configured (CheckURL) and at dial time against the
// address actually connected to, which DNS rebinding cannot get around.
//
// It imports app for the port's types only; app never imports it, cmd
// wires NewSender into app.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandemhq/tandem/internal/app"
)

var _ app.WebhookSender = (*Sender)(nil)

// Defaults for Options and requests.
const (
	// DefaultMaxResponseBytes is how much of a response body Send reads
	// when Options.MaxResponseBytes is 0.
	DefaultMaxResponseBytes = 64 << 10
	// DefaultTimeout bounds an attempt whose WebhookRequest.Timeout is not
	// positive.
	DefaultTimeout = 10 * time.Second
	// DefaultUserAgent is sent when Options.UserAgent is "".
	DefaultUserAgent = "tandem-webhooks"
	// maxRetryAfter caps a receiver's Retry-After.
	maxRetryAfter = 24 * time.Hour
)

// Options configure a Sender.
type Options struct {
	// AllowPrivate lets webhooks target loopback, private, link-local and
	// the other addresses CheckAddr refuses (development, private networks).
	AllowPrivate bool
	// MaxResponseBytes is how much of a response body is read (and
	// discarded) so the connection can be reused; 0: 64 KiB.
	MaxResponseBytes int64
	// UserAgent is the user-agent header; "": DefaultUserAgent.
	UserAgent string
	// Logger receives the full error of failed attempts at debug level;
	// nil: discard.
	Logger *slog.Logger
}

// Sender sends webhook attempts over a pooled HTTP client. It is safe for
// concurrent use.
type Sender struct {
	allowPrivate bool
	maxBody      int64
	userAgent    string
	log          *slog.Logger
	client       *http.Client
	transport    *http.Transport
	resolver     resolver
	now          func() time.Time
}

// NewSender returns a Sender with its own connection pool (close it with
// Close). It returns no error: every option has a default.
func NewSender(opts Options) *Sender {
	s := &Sender{
		allowPrivate: opts.AllowPrivate,
		maxBody:      opts.MaxResponseBytes,
		userAgent:    opts.UserAgent,
		log:          opts.Logger,
		resolver:     net.DefaultResolver,
		now:          time.Now,
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxResponseBytes
	}
	if s.userAgent == "" {
		s.userAgent = DefaultUserAgent
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.client, s.transport = newClient(s.allowPrivate)
	return s
}

// newClient is the HTTP client of webhooks and hooks: no proxy (a proxy
// would connect for us, past the address check), no redirects (a 3xx is
// the answer, not a hop), private addresses refused at dial time unless
// allowPrivate.
func newClient(allowPrivate bool) (*http.Client, *http.Transport) {
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = controlDial
	}
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	c := &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, t
}

// Close closes the idle pooled connections. Attempts in flight are not
// interrupted (cancel their contexts); the Sender stays usable. It returns
// nothing.
func (s *Sender) Close() { s.transport.CloseIdleConnections() }

// controlDial refuses, just before connecting, an address CheckAddr
// refuses: the address is the one DNS gave the dialer, not the one it gave
// CheckURL earlier.
func controlDial(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing the unparsable %s address %q", network, address)
	}
	return CheckAddr(ap.Addr())
}

// Send makes one attempt: a POST of req.Body to req.URL signed with each
// of req.Keys, bounded by req.Timeout (DefaultTimeout when not positive),
// redirects not followed, the response body read up to MaxResponseBytes
// and discarded. It returns no error of its own: the result has the
// receiver's Status and RetryAfter, or Err (a refused or invalid URL, DNS,
// connection, TLS, timeout) with a message safe to show to the webhook's
// owner; Duration is always set. Once a status has arrived, a failure
// while reading the response body does not make the attempt fail.
func (s *Sender) Send(ctx context.Context, req app.WebhookRequest) app.WebhookResult {
	start := time.Now()
	res := s.send(ctx, req)
	res.Duration = time.Since(start)
	return res
}

func (s *Sender) send(ctx context.Context, req app.WebhookRequest) app.WebhookResult {
	u, err := parseTarget(req.URL)
	if err != nil {
		return app.WebhookResult{Err: err}
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return app.WebhookResult{Err: describe(ctx, actx, err, timeout, u.Host, webhookAllowFlag)}
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", s.userAgent)
	h.Set("Webhook-Id", req.ID)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", signature(req.Keys, req.ID, ts, req.Body))

	resp, err := s.client.Do(hreq)
	if err != nil {
		s.log.Debug("webhook attempt failed", "host", u.Host, "id", req.ID, "err", unwrapURLError(err))
		return app.WebhookResult{Err: describe(ctx, actx, err, timeout, u.Host, webhookAllowFlag)}
	}
	// Reading a bounded amount lets a small body end so the connection
	// goes back to the pool; a longer one is cut off with the connection.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.maxBody))
	_ = resp.Body.Close()
	return app.WebhookResult{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), s.now()),
	}
}

// signature is the webhook-signature header: "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" per key, space-separated.
func signature(keys [][]byte, id, ts string, body []byte) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
		parts = append(parts, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(parts, " ")
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an
// HTTP-date, clamped to [0, 24h]; 0 when absent or unparsable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter // only overflow fails on digits
		}
		d = time.Duration(n) * time.Second
	} else {
		t, err := http.ParseTime(v)
		if err != nil {
			return 0
		}
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
