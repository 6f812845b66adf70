package app

import (
	"context"
	"time"
)

// WebhookRequest is one signed delivery attempt, as app hands it to a
// WebhookSender.
type WebhookRequest struct {
	URL string
	// ID is the webhook-id header: the cursor of the (last) event carried,
	// or a notice's own id.
	ID   string
	Body []byte
	// Keys are the HMAC-SHA256 keys to sign with (the decoded secrets,
	// newest first): the webhook-signature header carries one "v1,"
	// signature per key, space-separated.
	Keys [][]byte
	// Timeout bounds the whole attempt (connect, send, response headers,
	// reading the bounded response body).
	Timeout time.Duration
}

// WebhookResult is how an attempt ended.
type WebhookResult struct {
	// Status is the receiver's HTTP status (0: no response).
	Status int
	// RetryAfter is the receiver's Retry-After (0: none or unparsable).
	RetryAfter time.Duration
	// Err is why there was no usable response (refused target, DNS,
	// connection, timeout, redirect); nil when Status is set. Its message
	// is safe to show to the webhook's owner.
	Err      error
	Duration time.Duration
}

// WebhookSender sends webhook requests (internal/webhook implements it
// over HTTP). Implementations must be safe for concurrent use.
type WebhookSender interface {
	// Send makes one attempt: a POST of req.Body with the Standard
	// Webhooks headers, no redirects followed, the response body read up
	// to a small limit and discarded. It returns no error of its own:
	// failures are in WebhookResult.Err.
	Send(ctx context.Context, req WebhookRequest) WebhookResult
	// CheckURL validates a target URL at creation: http or https, a host,
	// no user info, and (unless private targets are allowed) no address
	// that is loopback, private, link-local, unspecified, multicast or a
	// metadata endpoint. Errors: one whose message says what is wrong.
	CheckURL(ctx context.Context, url string) error
}
