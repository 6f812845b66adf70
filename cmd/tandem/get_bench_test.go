package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/httpapi"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store/sqlite"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// benchHandler is the REST handler as serve wires it (SQLite store,
// change feed, app, httpapi with its whole middleware chain, no access
// log), called in-process: no sockets, no httptest server.
func benchHandler(b *testing.B, appOpts app.Options) (http.Handler, func(method, path, body string, hdr ...string) *benchWriter) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "tandem.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	h := hub.New(hub.Options{})
	frames := wire.Frames{}
	feed, err := stream.NewFeed(ctx, st, h, stream.FeedOptions{Frames: frames})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = feed.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	appOpts.Realtime.Resources = &stream.Resources{Store: st, Hub: h, Feed: feed, Frames: frames}
	a := app.New(st, withResourceEncoder(appOpts, frames))
	handler, err := httpapi.NewHandler(httpapi.Config{App: a, Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	do := func(method, path, body string, hdr ...string) *benchWriter {
		var r *http.Request
		if body == "" {
			r, _ = http.NewRequest(method, path, nil)
		} else {
			r, _ = http.NewRequest(method, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		r.RemoteAddr = "127.0.0.1:40000"
		w := &benchWriter{header: http.Header{}}
		handler.ServeHTTP(w, r)
		return w
	}
	return handler, do
}

// benchWriter is a reusable in-memory http.ResponseWriter.
type benchWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.status = 0
	w.body = w.body[:0]
}

// BenchmarkGetResource is GET /v1/collections/{c}/resources/{id} through
// the whole handler chain, in-process: "200" answers the body, "304"
// carries a matching If-None-Match, "200NoCache" is "200" with the
// resource cache off (every GET reads SQLite). It reports allocations
// per request.
//
//	go test ./cmd/tandem -run '^$' -bench BenchmarkGetResource -benchmem
func BenchmarkGetResource(b *testing.B) {
	for _, tc := range []struct {
		name    string
		hdr     []string
		noCache bool
	}{{"200", nil, false}, {"304", []string{"If-None-Match", `"2"`}, false}, {"200NoCache", nil, true}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := app.Options{ResourceCache: app.ResourceCacheOptions{Bytes: app.DefaultResourceCacheBytes}}
			if tc.noCache {
				opts.ResourceCache.Bytes = 0
			}
			handler, do := benchHandler(b, opts)
			if w := do("POST", "/v1/collections", `{"name":"bench"}`); w.status != 201 {
				b.Fatalf("create collection: %d %s", w.status, w.body)
			}
			if w := do("PUT", "/v1/collections/bench/resources/bench-get", `{"data":{"name":"bench","n":1,"tags":["a","b"]},"labels":{"env":"bench"}}`); w.status != 201 {
				b.Fatalf("put: %d %s", w.status, w.body)
			}
			u, _ := url.Parse("/v1/collections/bench/resources/bench-get")
			req := &http.Request{Method: "GET", URL: u, Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:40000", Host: "127.0.0.1", Body: http.NoBody}
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			want := 200
			if tc.hdr != nil {
				want = 304
			}
			w := &benchWriter{header: http.Header{}}
			handler.ServeHTTP(w, req.Clone(context.Background()))
			if w.status != want {
				b.Fatalf("GET: %d %s", w.status, w.body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.reset()
				handler.ServeHTTP(w, req)
				if w.status != want {
					b.Fatalf("GET: %d %s", w.status, w.body)
				}
			}
		})
	}
}

func withResourceEncoder(o app.Options, f wire.Frames) app.Options {
	o.ResourceEncoder = f
	return o
}
