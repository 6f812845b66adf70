package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/app"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// captured is what a receiver saw of one request.
type captured struct {
	header http.Header
	body   []byte
}

// receiver starts a loopback server running h, closed with the test.
func receiver(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// recorder is a receiver answering status after recording the request.
func recorder(t *testing.T, status int, header map[string]string) (*httptest.Server, <-chan captured) {
	t.Helper()
	got := make(chan captured, 8)
	srv := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Clone(), body}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
	})
	return srv, got
}

// sender returns a Sender closed with the test.
func sender(t *testing.T, opts Options) *Sender {
	t.Helper()
	s := NewSender(opts)
	t.Cleanup(s.Close)
	return s
}

// sign computes a Standard Webhooks signature independently of signature.
func sign(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id+"."+ts+".")
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestSignatureVector checks signature against the Standard Webhooks
// specification's published test vector.
func TestSignatureVector(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := signature([][]byte{key}, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature = %q, want %q", got, want)
	}
}

func TestSendSigns(t *testing.T) {
	k1, k2 := []byte("first key, 24 bytes long"), []byte("the previous secret key!")
	body := []byte(`{"type":"resource.created","cursor":"c1"}`)
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"OneKey", [][]byte{k1}},
		{"TwoKeys", [][]byte{k1, k2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recorder(t, http.StatusNoContent, nil)
			s := sender(t, Options{AllowPrivate: true, UserAgent: "test-agent"})
			before := time.Now().Unix()
			res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL + "/hook?x=1", ID: "evt_1", Body: body, Keys: tt.keys, Timeout: 5 * time.Second})
			if res.Err != nil || res.Status != http.StatusNoContent {
				t.Fatalf("Send = %+v, want status 204", res)
			}
			if res.Duration <= 0 {
				t.Errorf("Duration = %v, want > 0", res.Duration)
			}
			c := <-got
			if string(c.body) != string(body) {
				t.Errorf("body = %q, want %q", c.body, body)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "User-Agent": "test-agent", "Webhook-Id": "evt_1"} {
				if v := c.header.Get(k); v != want {
					t.Errorf("%s = %q, want %q", k, v, want)
				}
			}
			ts := c.header.Get("Webhook-Timestamp")
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || n < before || n > time.Now().Unix() {
				t.Fatalf("webhook-timestamp = %q, want unix seconds of now", ts)
			}
			var want []string
			for _, k := range tt.keys {
				want = append(want, sign(k, "evt_1", ts, body))
			}
			if sig := c.header.Get("Webhook-Signature"); sig != strings.Join(want, " ") {
				t.Errorf("webhook-signature = %q, want %q", sig, strings.Join(want, " "))
			}
		})
	}
}

func TestSendStatusAndRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
	}{
		{"OK", 200, "", 0},
		{"Seconds", 503, "120", 120 * time.Second},
		{"Date", 429, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Gone", 410, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := recorder(t, tt.status, map[string]string{"Retry-After": tt.retryAfter})
			s := sender(t, Options{AllowPrivate: true})
			s.now = func() time.Time { return now }
			res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL, ID: "i", Timeout: 5 * time.Second})
			if res.Err != nil || res.Status != tt.status || res.RetryAfter != tt.want {
				t.Fatalf("Send = %+v, want status %d, RetryAfter %v", res, tt.status, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{" 7 ", 7 * time.Second},
		{"86400", 24 * time.Hour},
		{"86401", 24 * time.Hour},
		{"99999999999999999999999", 24 * time.Hour},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), 24 * time.Hour},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	target := receiver(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	srv := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	s := sender(t, Options{AllowPrivate: true})
	res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL, ID: "i", Timeout: 5 * time.Second})
	if res.Err != nil || res.Status != http.StatusFound {
		t.Fatalf("Send = %+v, want status 302", res)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect target was hit %d times", n)
	}
}

// countingBody counts what the client read of a response body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

type countingTransport struct {
	http.RoundTripper
	n *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.RoundTripper.RoundTrip(r)
	if resp != nil {
		resp.Body = countingBody{resp.Body, c.n}
	}
	return resp, err
}

func TestSendReadsBoundedBody(t *testing.T) {
	const limit = 1 << 10
	srv := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 160 { // 10 MiB, until the client hangs up
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	s := sender(t, Options{AllowPrivate: true, MaxResponseBytes: limit})
	var read atomic.Int64
	s.client.Transport = countingTransport{s.transport, &read}
	res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL, ID: "i", Timeout: 10 * time.Second})
	if res.Err != nil || res.Status != http.StatusOK {
		t.Fatalf("Send = %+v, want status 200", res)
	}
	if n := read.Load(); n != limit {
		t.Fatalf("read %d bytes of the body, want %d", n, limit)
	}
	if res.Duration > 5*time.Second {
		t.Fatalf("Send took %v", res.Duration)
	}
}

func TestSendReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := sender(t, Options{AllowPrivate: true})
	for range 3 {
		if res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL, ID: "i", Body: []byte("{}"), Timeout: 5 * time.Second}); res.Status != 200 {
			t.Fatalf("Send = %+v", res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 sends opened %d connections, want 1", n)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	const timeout = 300 * time.Millisecond
	s := sender(t, Options{AllowPrivate: true})
	res := s.Send(context.Background(), app.WebhookRequest{URL: srv.URL, ID: "i", Timeout: timeout})
	if res.Err == nil || res.Err.Error() != "timed out after 300ms" {
		t.Fatalf("Send = %+v, want Err %q", res, "timed out after 300ms")
	}
	if res.Status != 0 || res.Duration < timeout || res.Duration > timeout+2*time.Second {
		t.Fatalf("Send = %+v, want no status and a Duration of about %v", res, timeout)
	}
}

func TestSendErrors(t *testing.T) {
	var hits atomic.Int32
	loop := receiver(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name         string
		allowPrivate bool
		ctx          context.Context
		url          string
		want         string
	}{
		{"Loopback", false, nil, loop.URL + "/x", "connect: target 127.0.0.1 is a loopback address (start tandem with --webhook-allow-private to allow it)"},
		{"LoopbackIPv6", false, nil, "http://[::1]:1/x", "connect: target ::1 is a loopback address"},
		{"Private", false, nil, "http://10.0.0.5:1/x", "connect: target 10.0.0.5 is a private address"},
		{"Localhost", false, nil, "http://localhost:1/x", "is a loopback address"},
		{"Refused", true, nil, "http://" + closed + "/x", "connect to " + closed + " failed: connection refused"},
		{"BadCertificate", true, nil, tlsSrv.URL, "tls: the certificate of " + strings.TrimPrefix(tlsSrv.URL, "https://") + " is not valid"},
		{"NotTLS", true, nil, "https://" + strings.TrimPrefix(loop.URL, "http://"), "does not speak TLS"},
		{"Scheme", true, nil, "ftp://" + closed, "scheme must be http or https"},
		{"Canceled", true, canceled, loop.URL, "canceled before a response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			s := sender(t, Options{AllowPrivate: tt.allowPrivate})
			res := s.Send(ctx, app.WebhookRequest{URL: tt.url, ID: "i", Keys: [][]byte{[]byte("secret")}, Timeout: 5 * time.Second})
			if res.Err == nil || !strings.Contains(res.Err.Error(), tt.want) {
				t.Fatalf("Send = %+v, want Err containing %q", res, tt.want)
			}
			t.Logf("Err: %v", res.Err)
			if res.Status != 0 || res.Duration <= 0 {
				t.Fatalf("Send = %+v, want no status and a Duration", res)
			}
			if strings.Contains(res.Err.Error(), "/x") || strings.Contains(res.Err.Error(), "secret") {
				t.Fatalf("Err %q repeats the URL's path or a key", res.Err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("refused targets were hit %d times", n)
	}
}
