package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var addrRE = regexp.MustCompile(`msg="tandem listening" addr=(\S+)`)

// testServer is a running `tandem serve` on a loopback port 0.
type testServer struct {
	URL    string
	Logs   *syncBuffer
	HTTP   *http.Client // validates every response against spec/openapi.yaml
	Client *client.ClientWithResponses
	stop   func()
}

// startServer runs run() in-process with a fresh SQLite database under
// t.TempDir(); extra args are appended to `serve`.
func startServer(t testing.TB, extra ...string) *testServer {
	t.Helper()
	return startServerEnv(t, func(string) string { return "" }, extra...)
}

func startServerEnv(t testing.TB, getenv func(string) string, extra ...string) *testServer {
	t.Helper()
	return startServerCtx(t, context.Background(), getenv, extra...)
}

// startServerCtx is startServerEnv with run's context derived from base
// (which may carry test hooks, e.g. withTracerProvider).
func startServerCtx(t testing.TB, base context.Context, getenv func(string) string, extra ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(base)
	logs := &syncBuffer{}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--strict", "--rate-limit", "0"}, extra...)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, getenv, &bytes.Buffer{}, logs) }()
	var url string
	deadline := time.Now().Add(20 * time.Second)
	for url == "" {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			url = "http://" + m[1]
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("server exited early: %v\n%s", err, logs.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not start:\n%s", logs.String())
		}
	}
	v, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: v.RoundTripper(&http.Transport{}, t.Errorf), Timeout: 30 * time.Second}
	c, err := client.NewClientWithResponses(url, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{URL: url, Logs: logs, HTTP: hc, Client: c}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run returned %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("server did not stop")
			}
		})
	}
	t.Cleanup(ts.stop)
	return ts
}

func base64RawURL(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}
