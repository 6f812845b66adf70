package tandem_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// testSecret returns a whsec_ secret of n bytes all b, and its key.
func testSecret(b byte, n int) (string, []byte) {
	key := bytes.Repeat([]byte{b}, n)
	return "whsec_" + base64.StdEncoding.EncodeToString(key), key
}

// signWebhook is the webhook-signature entry of key, computed as tandem
// does (HMAC-SHA256 of id.timestamp.body, standard base64).
func signWebhook(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signedRequest is a delivery of body as tandem sends it, signed with
// secret now.
func signedRequest(secret, id, body string) *http.Request {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	r := httptest.NewRequest(http.MethodPost, "/webhooks/tandem", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Webhook-Id", id)
	r.Header.Set("Webhook-Timestamp", ts)
	r.Header.Set("Webhook-Signature", signWebhook(key, id, ts, []byte(body)))
	return r
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_760_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	secret, key := testSecret(0x42, 32)
	oldSecret, oldKey := testSecret(0x17, 24)
	body := []byte(`{"type":"resource.created","cursor":"c1"}`)
	good := signWebhook(key, "evt_1", ts, body)

	// header builds the three headers, with overrides ("" drops one).
	header := func(kv ...string) http.Header {
		h := http.Header{}
		h.Set("Webhook-Id", "evt_1")
		h.Set("Webhook-Timestamp", ts)
		h.Set("Webhook-Signature", good)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	rotated := signWebhook(key, "evt_1", ts, body) + " " + signWebhook(oldKey, "evt_1", ts, body)

	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		want   error
	}{
		{"OK", secret, header(), body, nil},
		{"OKWithoutPrefix", strings.TrimPrefix(secret, "whsec_"), header(), body, nil},
		{"OKLowerCaseMap", secret, http.Header{"webhook-id": {"evt_1"}, "webhook-timestamp": {ts}, "webhook-signature": {good}}, body, nil},
		{"TamperedBody", secret, header(), []byte(`{"type":"resource.deleted","cursor":"c1"}`), tandem.ErrWebhookSignature},
		{"TamperedID", secret, header("Webhook-Id", "evt_2"), body, tandem.ErrWebhookSignature},
		{"TamperedTimestamp", secret, header("Webhook-Timestamp", at(time.Second)), body, tandem.ErrWebhookSignature},
		{"WrongSecret", oldSecret, header(), body, tandem.ErrWebhookSignature},
		{"OldTimestamp", secret, header("Webhook-Timestamp", at(-6*time.Minute), "Webhook-Signature", signWebhook(key, "evt_1", at(-6*time.Minute), body)), body, tandem.ErrWebhookTimestamp},
		{"FutureTimestamp", secret, header("Webhook-Timestamp", at(6*time.Minute), "Webhook-Signature", signWebhook(key, "evt_1", at(6*time.Minute), body)), body, tandem.ErrWebhookTimestamp},
		{"EdgeOfWindow", secret, header("Webhook-Timestamp", at(-5*time.Minute), "Webhook-Signature", signWebhook(key, "evt_1", at(-5*time.Minute), body)), body, nil},
		{"TimestampNotNumber", secret, header("Webhook-Timestamp", "yesterday"), body, tandem.ErrWebhookTimestamp},
		{"RotationNewSecret", secret, header("Webhook-Signature", rotated), body, nil},
		{"RotationOldSecret", oldSecret, header("Webhook-Signature", rotated), body, nil},
		{"MissingID", secret, header("Webhook-Id", ""), body, tandem.ErrWebhookHeaders},
		{"MissingTimestamp", secret, header("Webhook-Timestamp", ""), body, tandem.ErrWebhookHeaders},
		{"MissingSignature", secret, header("Webhook-Signature", ""), body, tandem.ErrWebhookHeaders},
		{"NonV1Ignored", secret, header("Webhook-Signature", "v2,"+strings.TrimPrefix(good, "v1,")+" v1a,abc "+good), body, nil},
		{"OnlyNonV1", secret, header("Webhook-Signature", "v2,"+strings.TrimPrefix(good, "v1,")), body, tandem.ErrWebhookSignature},
		{"BadBase64Entry", secret, header("Webhook-Signature", "v1,@@@ "+good), body, nil},
		{"TruncatedSignature", secret, header("Webhook-Signature", good[:20]), body, tandem.ErrWebhookSignature},
		{"MalformedSecret", "whsec_not base64!", header(), body, tandem.ErrWebhookSecret},
		{"ShortSecret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short")), header(), body, tandem.ErrWebhookSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tandem.VerifyWebhookAt(tt.secret, tt.header, tt.body, now, 0)
			if tt.want == nil && err != nil {
				t.Fatalf("VerifyWebhookAt = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifyWebhookAt = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifyWebhookVector verifies the Standard Webhooks specification's
// published test vector.
func TestVerifyWebhookVector(t *testing.T) {
	h := http.Header{}
	h.Set("Webhook-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("Webhook-Timestamp", "1614265330")
	h.Set("Webhook-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	err := tandem.VerifyWebhookAt("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0), 0)
	if err != nil {
		t.Fatalf("VerifyWebhookAt(test vector) = %v", err)
	}
}

// TestVerifyWebhookNow checks VerifyWebhook against the real clock and a
// custom tolerance against VerifyWebhookAt.
func TestVerifyWebhookNow(t *testing.T) {
	secret, key := testSecret(7, 32)
	r := signedRequest(secret, "evt_9", `{"a":1}`)
	if err := tandem.VerifyWebhook(secret, r.Header, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("VerifyWebhook = %v", err)
	}
	sent := time.Now().Add(-2 * time.Minute)
	ts := strconv.FormatInt(sent.Unix(), 10)
	h := http.Header{"Webhook-Id": {"e"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {signWebhook(key, "e", ts, nil)}}
	if err := tandem.VerifyWebhookAt(secret, h, nil, time.Now(), time.Minute); !errors.Is(err, tandem.ErrWebhookTimestamp) {
		t.Fatalf("VerifyWebhookAt (tolerance 1m, sent 2m ago) = %v, want ErrWebhookTimestamp", err)
	}
}
