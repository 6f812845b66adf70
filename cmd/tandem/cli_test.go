package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// cliRun runs one client command against url and returns its stdout and
// stderr.
func cliRun(t *testing.T, serverURL string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// --url goes first so that a test's own --url wins.
	args = append([]string{args[0], "--url", serverURL}, args[1:]...)
	err := run(ctx, args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// watcher is a `tandem watch` running in the background.
type watcher struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

func startWatch(t *testing.T, getenv func(string) string, args ...string) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- run(ctx, append([]string{"watch"}, args...), getenv, w.stdout, w.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			t.Error("watch did not stop")
		}
	})
	return w
}

// lines waits until watch printed at least n lines and returns them, each
// validated against spec/asyncapi.yaml.
func (w *watcher) lines(t *testing.T, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw := strings.Split(strings.TrimSpace(w.stdout.String()), "\n")
		if raw[0] == "" {
			raw = nil
		}
		if len(raw) >= n {
			out := make([]map[string]any, 0, len(raw))
			for _, l := range raw {
				if err := asyncValidator(t).ValidateServerFrame([]byte(l)); err != nil {
					t.Fatalf("watch printed a frame that violates spec/asyncapi.yaml: %v\n%s", err, l)
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("not a JSON line: %q", l)
				}
				out = append(out, m)
			}
			return out
		}
		select {
		case err := <-w.done:
			t.Fatalf("watch ended: %v\nstderr:\n%s", err, w.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch printed %d of %d lines:\n%s\nstderr:\n%s", len(raw), n, w.stdout.String(), w.stderr.String())
		}
	}
}

// summarize reduces printed frames to "event id" / "synced" for comparison.
func summarize(frames []map[string]any) []string {
	var out []string
	for _, f := range frames {
		switch f["type"] {
		case "event":
			if r, ok := f["resource"].(map[string]any); ok {
				out = append(out, f["event"].(string)+" "+r["id"].(string))
			} else {
				b, _ := json.Marshal(f["message"].(map[string]any)["data"])
				out = append(out, "message "+string(b))
			}
		default:
			out = append(out, f["type"].(string))
		}
	}
	return out
}

func noViolations(t *testing.T, s *testServer) {
	t.Helper()
	if strings.Contains(s.Logs.String(), "violates spec") {
		t.Errorf("server logged spec violations:\n%s", s.Logs.String())
	}
}

func TestCLIResources(t *testing.T) {
	s := startServer(t)
	defer noViolations(t, s)
	tests := []struct {
		name    string
		args    []string
		wantOut []string // substrings of stdout
		wantErr string   // substring of the error
		usage   bool
	}{
		{"PutMissingCollection", []string{"put", "fruit", "apple", `{"n":1}`}, nil, "Not found (404)", false},
		{"PutCreate", []string{"put", "fruit", "apple", `{"n":1}`, "--create", "--labels", "colour=red,size=m"}, []string{`"id":"apple"`, `"colour":"red"`, `"data":{"n":1}`}, "", false},
		{"PutFlagsFirst", []string{"put", "--labels", "colour=green", "fruit", "pear", `{"n":2}`}, []string{`"id":"pear"`}, "", false},
		{"Get", []string{"get", "fruit", "apple"}, []string{`"id":"apple"`, `"revision":`}, "", false},
		{"List", []string{"get", "fruit"}, []string{`"id":"apple"`, `"id":"pear"`}, "", false},
		{"ListSelector", []string{"get", "fruit", "--labels", "colour=green"}, []string{`"id":"pear"`}, "", false},
		{"Delete", []string{"delete", "fruit", "apple"}, nil, "", false},
		{"GetDeleted", []string{"get", "fruit", "apple"}, nil, "Not found (404)", false},
		{"PutInvalidJSON", []string{"put", "fruit", "x", `{nope`}, nil, "not valid JSON", true},
		{"PutNotObject", []string{"put", "fruit", "x", `[1]`}, nil, "(400)", false},
		{"PutBadLabels", []string{"put", "fruit", "x", `{}`, "--labels", "novalue"}, nil, "not key=value", true},
		{"GetNoArgs", []string{"get"}, nil, "expected COLLECTION", true},
		{"DeleteTooMany", []string{"delete", "a", "b", "c"}, nil, "expected 2 argument(s)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := cliRun(t, s.URL, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				var ue usageError
				if errors.As(err, &ue) != tt.usage {
					t.Fatalf("usage error = %v, want %v (%v)", !tt.usage, tt.usage, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Fatalf("stdout %q lacks %q", out, w)
				}
			}
		})
	}
	out, _, err := cliRun(t, s.URL, "get", "fruit", "--labels", "colour=green")
	if err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("selector listing: %q, %v", out, err)
	}
}

func TestCLIPublishAndWatchChannel(t *testing.T) {
	s := startServer(t)
	defer noViolations(t, s)
	// TANDEM_URL instead of --url.
	env := func(k string) string {
		if k == "TANDEM_URL" {
			return s.URL
		}
		return ""
	}
	w := startWatch(t, env, "channels/chat:cli/messages")
	waitFor(t, w.stderr, "subscribed to channels/chat:cli/messages")
	out, _, err := cliRun(t, s.URL, "publish", "chat:cli", `{"text":"hi"}`)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["offset"] != float64(1) || m["cursor"] == "" {
		t.Fatalf("publish printed %q (%v)", out, err)
	}
	frames := w.lines(t, 1)
	if got := summarize(frames); got[0] != `message {"text":"hi"}` || frames[0]["cursor"] != m["cursor"] {
		t.Fatalf("watch printed %v, want the message with cursor %v", frames, m["cursor"])
	}
	if _, _, err := cliRun(t, s.URL, "publish", "chat:cli", "hello"); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("publishing a bare word: %v", err)
	}
	w.cancel()
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
	w.done <- nil
	if !strings.Contains(w.stderr.String(), "resume with --since "+m["cursor"].(string)) {
		t.Fatalf("stderr lacks the resume hint:\n%s", w.stderr.String())
	}
}

func waitFor(t *testing.T, b *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(b.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q in:\n%s", text, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCLIWatchResumesAcrossRestart restarts the server (same data, same
// port) under a running watch: the changes made while it was away arrive
// once, in order, after the ones it printed before.
func TestCLIWatchResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	u, _ := url.Parse(s.URL)
	addr := u.Host
	if _, _, err := cliRun(t, s.URL, "put", "--create", "jobs", "j1", `{}`); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, func(string) string { return "" }, "collections/jobs/resources", "--snapshot", "--url", s.URL)
	w.lines(t, 2) // j1 snapshot, synced
	if _, _, err := cliRun(t, s.URL, "put", "jobs", "j2", `{}`); err != nil {
		t.Fatal(err)
	}
	w.lines(t, 3)

	s.stop()
	noViolations(t, s)
	waitFor(t, w.stderr, "connection lost")
	// Keep the port: nothing else may take it between stop and restart.
	if ln, err := net.Listen("tcp", addr); err != nil {
		t.Fatalf("port %s not free after stop: %v", addr, err)
	} else {
		ln.Close()
	}
	s2 := startServer(t, "--data-dir", dir, "--addr", addr)
	defer noViolations(t, s2)
	for _, id := range []string{"j3", "j1"} {
		if _, _, err := cliRun(t, s2.URL, "put", "jobs", id, `{"v":2}`); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := cliRun(t, s2.URL, "delete", "jobs", "j2"); err != nil {
		t.Fatal(err)
	}
	frames := w.lines(t, 6)
	want := []string{"resource.snapshot j1", "synced", "resource.created j2", "resource.created j3", "resource.updated j1", "resource.deleted j2"}
	got := summarize(frames)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("watch printed\n%v\nwant\n%v\nstderr:\n%s", got, want, w.stderr.String())
	}
	if strings.Count(w.stderr.String(), "connected to") < 2 {
		t.Fatalf("no reconnect in stderr:\n%s", w.stderr.String())
	}

	// --since resumes after a printed cursor.
	out, _, err := func() (string, string, error) {
		w2 := startWatch(t, func(string) string { return "" }, "collections/jobs/resources", "--since", frames[3]["cursor"].(string), "--url", s2.URL)
		fr := w2.lines(t, 2)
		b, _ := json.Marshal(summarize(fr))
		return string(b), w2.stderr.String(), nil
	}()
	if err != nil || out != `["resource.updated j1","resource.deleted j2"]` {
		t.Fatalf("watch --since printed %s (%v)", out, err)
	}
}

func TestCLIWatchErrors(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
		usage   bool
	}{
		{"NoTopic", []string{"watch"}, "expected 1 argument(s)", true},
		{"MissingCollection", []string{"watch", "collections/nope/resources"}, "Not found (404)", false},
		{"BadCursor", []string{"watch", "channels/x/messages", "--since", "bogus"}, "(400)", false},
		{"BadMeta", []string{"watch", "channels/x/messages", "--meta", "{"}, "--meta is not valid JSON", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cliRun(t, s.URL, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			var ue usageError
			if errors.As(err, &ue) != tt.usage {
				t.Fatalf("usage error: %v", err)
			}
		})
	}
}
