package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// runMain runs args as main does: the exit code and what main would
// print on stderr.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, args, func(string) string { return "" }, &out, &errOut)
	if err != nil {
		reportError(&errOut, err)
		code = exitCode(err)
	}
	return code, out.String(), errOut.String()
}

// closedURL is the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestCLIUsageErrorsSayWhy: every command-line mistake exits 2 with its
// message on stderr, once.
func TestCLIUsageErrorsSayWhy(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"PublishBareWord", []string{"publish", "chat:lobby", "hello"}, `"hello" is not valid JSON (strings need quotes`},
		{"PutBadJSON", []string{"put", "orders", "o-3", `{"bad json`}, `is not valid JSON`},
		{"PublishNoArgs", []string{"publish"}, "tandem publish: expected 2 argument(s), got 0"},
		{"UnknownFlag", []string{"get", "orders", "--nope"}, "flag provided but not defined: -nope"},
		{"UnknownCommand", []string{"frobnicate"}, `tandem: unknown command "frobnicate"`},
		{"NoCommand", nil, "tandem: no command given"},
		{"ServeExtraArg", []string{"serve", "extra"}, `tandem serve: unexpected argument "extra"`},
		{"BadLabels", []string{"put", "orders", "o-1", "{}", "--labels", "x"}, `--labels: "x" is not key=value`},
		{"GetLimit", []string{"get", "orders", "--limit", "-1"}, "tandem get: --limit must be positive"},
		{"WatchMeta", []string{"watch", "channels/x/messages", "--meta", "{"}, "--meta is not valid JSON"},
		{"WebhooksNone", []string{"webhooks"}, "tandem webhooks: no command given"},
		{"WebhooksUnknown", []string{"webhooks", "frob"}, `tandem webhooks: unknown command "frob"`},
		{"TokenNoSub", []string{"token", "--secret", strings.Repeat("s", 32)}, "--sub is required"},
		{"VersionArg", []string{"version", "x"}, `version: unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runMain(t, tt.args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			if out != "" {
				t.Errorf("stdout not empty: %q", out)
			}
			if n := strings.Count(stderr, tt.want); n != 1 {
				t.Fatalf("stderr has %q %d times, want once:\n%s", tt.want, n, stderr)
			}
		})
	}
}

// TestCLIHelpExitsZero: -h of every command prints its usage and exits 0.
func TestCLIHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"help"}, {"serve", "-h"}, {"token", "-h"}, {"bench", "-h"}, {"bench", "fanout", "-h"},
		{"watch", "-h"}, {"publish", "-h"}, {"get", "-h"}, {"put", "--help"}, {"delete", "-h"},
		{"webhooks", "-h"}, {"webhooks", "list", "-h"}, {"webhooks", "create", "-h"},
		{"version", "-h"}, {"healthcheck", "-h"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			code, out, stderr := runMain(t, args...)
			if code != 0 {
				t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(out+stderr, "Usage") {
				t.Fatalf("no usage printed:\n%s%s", out, stderr)
			}
			if strings.Contains(out+stderr, "-token tandem token") || strings.Contains(out+stderr, "flag: help requested") {
				t.Fatalf("garbled usage:\n%s", stderr)
			}
		})
	}
}

// TestCLIServerDown: a client command against a server that is not
// running prints one line naming the URL and what to do, and exits 1.
func TestCLIServerDown(t *testing.T) {
	u := closedURL(t)
	for _, args := range [][]string{
		{"get", "orders"}, {"get", "orders", "o-1"}, {"put", "orders", "o-1", "{}"},
		{"delete", "orders", "o-1"}, {"publish", "chat:lobby", `"hi"`}, {"webhooks", "list"},
		{"healthcheck"},
	} {
		t.Run(args[0], func(t *testing.T) {
			code, _, stderr := runMain(t, append(args, "--url", u)...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			want := "cannot reach the server at " + u + ": is the server running? (`make run` starts one)"
			if strings.TrimSpace(stderr) == "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
				t.Fatalf("stderr = %q, want one line with %q", stderr, want)
			}
		})
	}
}

// TestCLIWatchWaitsForServer: watch started before its server retries
// until the server is up, then prints its events.
func TestCLIWatchWaitsForServer(t *testing.T) {
	u := closedURL(t)
	w := startWatch(t, func(string) string { return "" }, "channels/chat:early/messages", "--url", u)
	waitFor(t, w.stderr, "retrying in")
	if !strings.Contains(w.stderr.String(), "is the server running?") {
		t.Fatalf("stderr:\n%s", w.stderr.String())
	}
	s := startServer(t, "--addr", strings.TrimPrefix(u, "http://"))
	waitFor(t, w.stderr, "subscribed to channels/chat:early/messages")
	if _, _, err := cliRun(t, s.URL, "publish", "chat:early", `"hi"`); err != nil {
		t.Fatal(err)
	}
	if got := summarize(w.lines(t, 1)); got[0] != `message "hi"` {
		t.Fatalf("watch printed %v", got)
	}
}

// TestCLIWatchChannelAcrossRestart: a channel's history lives in the
// (in-memory) broker, so a restart loses it. watch reloads by default and
// says so on stderr; with --no-resync it exits 1 saying why.
func TestCLIWatchChannelAcrossRestart(t *testing.T) {
	for _, noResync := range []bool{false, true} {
		name := "Resync"
		if noResync {
			name = "NoResync"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := startServer(t, "--data-dir", dir)
			addr := strings.TrimPrefix(s.URL, "http://")
			args := []string{"channels/chat:restart/messages", "--url", s.URL}
			if noResync {
				args = append(args, "--no-resync")
			}
			w := startWatch(t, func(string) string { return "" }, args...)
			waitFor(t, w.stderr, "subscribed to")
			if _, _, err := cliRun(t, s.URL, "publish", "chat:restart", `"one"`); err != nil {
				t.Fatal(err)
			}
			w.lines(t, 1)
			s.stop()
			waitFor(t, w.stderr, "connection lost")
			s2 := startServer(t, "--data-dir", dir, "--addr", addr)
			if noResync {
				select {
				case err := <-w.done:
					w.done <- err // for the cleanup
					if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "without --no-resync") {
						t.Fatalf("watch --no-resync ended with %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("watch --no-resync did not exit:\n%s", w.stderr.String())
				}
				return
			}
			waitFor(t, w.stderr, "reloading: a new snapshot follows")
			w.lines(t, 2) // the new (empty) history's synced line
			if _, _, err := cliRun(t, s2.URL, "publish", "chat:restart", `"two"`); err != nil {
				t.Fatal(err)
			}
			got := summarize(w.lines(t, 3))
			if got[0] != `message "one"` || got[1] != "synced" || got[2] != `message "two"` {
				t.Fatalf("watch printed %v\nstderr:\n%s", got, w.stderr.String())
			}
		})
	}
}

// TestVersion: the ldflags values win, the module version fills "dev",
// the VCS stamps fill commit and date; --json prints them all.
func TestVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name           string
		ver, rev, date string
		bi             *debug.BuildInfo
		want           buildInfo
	}{
		{"GoInstall", "dev", "", "", bi, buildInfo{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.26.8", BuildDate: "2026-12-01T00:00:00Z", Modified: true}},
		{"Ldflags", "v9", "fff", "2027", bi, buildInfo{Version: "v9", Commit: "fff", GoVersion: "go1.26.8", BuildDate: "2027", Modified: true}},
		{"Devel", "dev", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, buildInfo{Version: "dev", GoVersion: "go1.26.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mergeBuild(tt.ver, tt.rev, tt.date, tt.bi); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	code, out, stderr := runMain(t, "version", "--json")
	if code != 0 {
		t.Fatal(stderr)
	}
	var got map[string]any
	if err := jsonUnmarshal(out, &got); err != nil {
		t.Fatalf("version --json printed %q: %v", out, err)
	}
	for _, k := range []string{"version", "commit", "goVersion", "buildDate", "modified"} {
		if _, ok := got[k]; !ok {
			t.Errorf("version --json lacks %q: %s", k, out)
		}
	}
	if code, out, _ := runMain(t, "version"); code != 0 || !strings.HasPrefix(out, "tandem ") {
		t.Fatalf("version printed %q", out)
	}
}

// TestBuildInfoMetricAndHealthcheck: /metrics carries tandem_build_info,
// healthcheck passes against a ready server.
func TestBuildInfoMetricAndHealthcheck(t *testing.T) {
	s := startServer(t)
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b := currentBuild()
	want := `tandem_build_info{commit="` + b.Commit + `",goversion="` + b.GoVersion + `",version="` + b.Version + `"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("/metrics lacks %s", want)
	}
	for _, args := range [][]string{{"healthcheck"}, {"healthcheck", "--live"}} {
		code, out, stderr := runMain(t, append(args, "--url", s.URL)...)
		if code != 0 || !strings.HasPrefix(out, "ok ") {
			t.Fatalf("%v: exit %d, %q %q", args, code, out, stderr)
		}
	}
	if code, _, _ := runMain(t, "healthcheck", "--timeout", "0"); code != 2 {
		t.Fatalf("--timeout 0: exit %d", code)
	}
	if err := errors.New("x"); exitCode(err) != 1 {
		t.Fatal("plain errors exit 1")
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
