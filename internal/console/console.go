// Package console serves Tandem's browser pages from files embedded in the
// binary (hand-written HTML, CSS and JavaScript: no CDN, no build step):
//
//   - GET /               the console, one page with four views (ES
//     modules, one or two per view): Live (pick a topic, watch its events
//     with their cursors, reconnecting and resuming; publish to a channel,
//     watch presence, change and list resources, copy curl/SDK snippets),
//     Collections (browse a collection's resources page by page with
//     labels, filter and order; view its schema; create, edit with
//     If-Match, delete; schema errors shown at their field), Connections
//     (every node's WebSocket connections, disconnect one; admin) and Node
//     (/readyz checks, lag gauges and the version from /metrics);
//   - GET /docs/asyncapi  the WebSocket protocol rendered from the AsyncAPI
//     document;
//   - GET /asyncapi.json  spec/asyncapi.yaml as JSON, key order kept, for
//     that page and for tools that want JSON;
//   - GET /console/…      the pages' assets.
//
// Every route is an exact path, so a request for any other path still
// reaches the API router and gets its 404 problem.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/spec"
)

//go:embed assets
var assets embed.FS

// contentSecurityPolicy allows the pages to load only their own assets and
// to talk only to their own origin (REST and the WebSocket).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// contentTypes fixes the asset types (the system's MIME table varies).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Routes returns the patterns this package serves and their handlers, for
// httpapi.Config.Mounts. Errors: none at run time; a malformed embedded
// AsyncAPI document is reported by /asyncapi.json as a 500.
func Routes() map[string]http.Handler {
	routes := map[string]http.Handler{
		"GET /{$}":           page("index.html"),
		"GET /docs/asyncapi": page("asyncapi.html"),
		// Without this, /docs/asyncapi/ would fall to Swagger UI's /docs/.
		"GET /docs/asyncapi/{$}": http.RedirectHandler("/docs/asyncapi", http.StatusMovedPermanently),
		"GET /asyncapi.json":     http.HandlerFunc(serveAsyncAPIJSON),
	}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".html") {
			return err
		}
		name := strings.TrimPrefix(p, "assets/")
		routes["GET /console/"+name] = asset(name)
		return nil
	})
	if err != nil {
		panic("console: embedded assets unreadable: " + err.Error()) // a build defect
	}
	return routes
}

// Handler serves Routes on its own mux (other paths: plain 404), for use
// outside the main server.
func Handler() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range Routes() {
		mux.Handle(pattern, h)
	}
	return mux
}

// file is one embedded asset with its validator.
type file struct {
	name        string
	contentType string
	body        []byte
	etag        string
}

func load(name string) file {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic("console: missing embedded asset " + name) // a build defect
	}
	sum := sha256.Sum256(b)
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return file{name: name, contentType: ct, body: b, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// serve writes f with revalidation (ETag, If-None-Match → 304), so a new
// binary's assets are picked up without stale caches.
func (f file) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

func asset(name string) http.Handler {
	f := load(name)
	return http.HandlerFunc(f.serve)
}

func page(name string) http.Handler {
	f := load(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		w.Header().Set("Referrer-Policy", "no-referrer")
		f.serve(w, r)
	})
}

var (
	asyncJSONOnce sync.Once
	asyncJSON     file
	asyncJSONErr  error
)

func serveAsyncAPIJSON(w http.ResponseWriter, r *http.Request) {
	asyncJSONOnce.Do(func() {
		b, err := YAMLToJSON(spec.AsyncAPI)
		if err != nil {
			asyncJSONErr = err
			return
		}
		sum := sha256.Sum256(b)
		asyncJSON = file{name: "asyncapi.json", contentType: "application/json", body: b,
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	})
	if asyncJSONErr != nil {
		http.Error(w, "the embedded AsyncAPI document is malformed: "+asyncJSONErr.Error(), http.StatusInternalServerError)
		return
	}
	asyncJSON.serve(w, r)
}
