package tandem

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookTolerance is how far a delivery's webhook-timestamp may be from
// the receiver's clock, either way, for VerifyWebhook (the replay window).
const WebhookTolerance = 5 * time.Minute

// webhookSecretPrefix starts a Standard Webhooks secret.
const webhookSecretPrefix = "whsec_"

// Errors of VerifyWebhook, matched with errors.Is; the returned errors wrap
// them with detail.
var (
	// ErrWebhookHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is missing.
	ErrWebhookHeaders = errors.New("tandem: webhook headers missing")
	// ErrWebhookTimestamp: webhook-timestamp is not unix seconds, or is
	// further from now than the tolerance (a replay, or a skewed clock).
	ErrWebhookTimestamp = errors.New("tandem: webhook timestamp outside the tolerance")
	// ErrWebhookSignature: no v1 signature of webhook-signature matches the
	// secret (a forged or altered delivery, or the wrong secret).
	ErrWebhookSignature = errors.New("tandem: webhook signature does not match")
	// ErrWebhookSecret: the secret is not whsec_ followed by padded
	// standard base64 of 24 to 64 bytes (a configuration mistake, not the
	// sender's).
	ErrWebhookSecret = errors.New("tandem: malformed webhook secret")
)

// VerifyWebhook checks that a webhook delivery comes from tandem, signed
// with secret (the webhook's "whsec_…" secret, the prefix optional), and
// was sent within WebhookTolerance of now. header is the request's header
// and body its raw body, exactly as received (verify before decoding the
// JSON). It returns nil, or an error matching ErrWebhookSecret,
// ErrWebhookHeaders, ErrWebhookTimestamp or ErrWebhookSignature.
//
// During a secret rotation tandem signs with the new and the previous
// secret; a receiver that knows either verifies. webhook-id identifies the
// delivery: a receiver may remember recent ones to ignore a retry of a
// delivery it already handled.
func VerifyWebhook(secret string, header http.Header, body []byte) error {
	return VerifyWebhookAt(secret, header, body, time.Now(), WebhookTolerance)
}

// VerifyWebhookAt is VerifyWebhook with the receiver's clock and the
// tolerance given (tolerance ≤ 0: WebhookTolerance). It returns nil, or an
// error matching ErrWebhookSecret, ErrWebhookHeaders, ErrWebhookTimestamp or
// ErrWebhookSignature.
func VerifyWebhookAt(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := webhookKey(secret)
	if err != nil {
		return err
	}
	id := headerValue(header, "webhook-id", "")
	ts := headerValue(header, "webhook-timestamp", "")
	sigs := headerValue(header, "webhook-signature", " ")
	var missing []string
	for _, h := range [][2]string{{"webhook-id", id}, {"webhook-timestamp", ts}, {"webhook-signature", sigs}} {
		if h[1] == "" {
			missing = append(missing, h[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no %s", ErrWebhookHeaders, strings.Join(missing, ", "))
	}

	if tolerance <= 0 {
		tolerance = WebhookTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp %q is not unix seconds", ErrWebhookTimestamp, ts)
	}
	sent := time.Unix(sec, 0)
	if d := now.Sub(sent); d > tolerance {
		return fmt.Errorf("%w: sent %s ago (tolerance %s)", ErrWebhookTimestamp, d.Truncate(time.Second), tolerance)
	} else if -d > tolerance {
		return fmt.Errorf("%w: sent %s in the future (tolerance %s)", ErrWebhookTimestamp, (-d).Truncate(time.Second), tolerance)
	}

	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	seen := 0
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue // another scheme (v1a, a future one) is not ours to check
		}
		seen++
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	if seen == 0 {
		return fmt.Errorf("%w: webhook-signature has no v1 signature", ErrWebhookSignature)
	}
	return fmt.Errorf("%w: none of %d v1 signatures is this secret's", ErrWebhookSignature, seen)
}

// webhookKey decodes a secret into its HMAC key. Errors: ErrWebhookSecret.
func webhookKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, webhookSecretPrefix))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: not whsec_ and standard base64", ErrWebhookSecret)
	case len(key) < 24 || len(key) > 64:
		return nil, fmt.Errorf("%w: %d bytes, want 24 to 64", ErrWebhookSecret, len(key))
	}
	return key, nil
}

// headerValue is a header found under its canonical name or, in a header
// map built by hand, in any case: its values joined with sep, or only the
// first when sep is "".
func headerValue(h http.Header, name, sep string) string {
	vs := h.Values(name)
	if len(vs) == 0 {
		for k, v := range h {
			if strings.EqualFold(k, name) {
				vs = append(vs, v...)
			}
		}
	}
	if len(vs) == 0 {
		return ""
	}
	if sep == "" {
		return strings.TrimSpace(vs[0])
	}
	return strings.TrimSpace(strings.Join(vs, sep))
}
