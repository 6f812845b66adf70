package app

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// callerFunc is the application's side of the HookCaller port, in the
// test: the use cases' policy is under test, not HTTP (internal/webhook
// and cmd/tandem test the signed calls against a real server).
type callerFunc func(ctx context.Context, call HookCall) (HookReply, error)

func (f callerFunc) CallHook(ctx context.Context, call HookCall) (HookReply, error) {
	return f(ctx, call)
}

var _ HookCaller = callerFunc(nil)

func hookApp(t *testing.T, caller callerFunc, tweak func(*Options)) *App {
	t.Helper()
	a, _ := newRealtimeAppWith(t, func(o *Options) {
		o.Hooks.Caller = caller
		open := o.Realtime.Namespaces.ByName["open"]
		open.Publish = HookConfig{URL: "http://app/publish", Timeout: time.Second}
		open.RPC = HookConfig{URL: "http://app/rpc", Timeout: time.Second}
		open.RPCMethods = []string{"open:move"}
		o.Realtime.Namespaces.ByName["open"] = open
		o.Hooks.Connect = HookConfig{URL: "http://app/connect", Timeout: time.Second}
		if tweak != nil {
			tweak(o)
		}
	})
	return a
}

func TestPublishHook(t *testing.T) {
	topic := stream.Topic{Kind: stream.TopicChannel, Channel: "open:room", Path: stream.MessagesTopic("open:room")}
	fail := errors.New("answered 500 Internal Server Error")
	cases := []struct {
		name    string
		onError HookFailure
		answer  func(HookCall) (HookReply, error)
		want    string // data published, or "" for an error
		code    store.Code
	}{
		{"Keep", "", func(HookCall) (HookReply, error) { return HookReply{}, nil }, `{"t":"hi"}`, ""},
		{"Replace", "", func(c HookCall) (HookReply, error) {
			return HookReply{Data: json.RawMessage(`{ "t" : "HI" }`)}, nil
		}, `{"t":"HI"}`, ""},
		{"ReplaceTooLarge", "", func(HookCall) (HookReply, error) {
			return HookReply{Data: json.RawMessage(`"` + strings.Repeat("x", 100) + `"`)}, nil
		}, "", store.CodeUnavailable},
		{"Denied", "", func(HookCall) (HookReply, error) {
			return HookReply{Problem: &HookProblem{Status: 422, Title: "no"}}, nil
		}, "", store.CodeInvalidValue},
		{"DeniedDefaultStatus", "", func(HookCall) (HookReply, error) { return HookReply{Problem: &HookProblem{}}, nil }, "", store.CodeForbidden},
		{"FailDeny", FailDeny, func(HookCall) (HookReply, error) { return HookReply{}, fail }, "", store.CodeUnavailable},
		{"FailAllow", FailAllow, func(HookCall) (HookReply, error) { return HookReply{}, fail }, `{"t":"hi"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var seen HookCall
			a := hookApp(t, func(_ context.Context, c HookCall) (HookReply, error) { seen = c; return tc.answer(c) }, func(o *Options) {
				open := o.Realtime.Namespaces.ByName["open"]
				open.Publish.OnError = tc.onError
				o.Realtime.Namespaces.ByName["open"] = open
			})
			m, err := a.Publish(t.Context(), everyone, topic, json.RawMessage(`{"t":"hi"}`), ClientInfo{Transport: "rest", Remote: "127.0.0.1:1"})
			if seen.Kind != HookPublish || seen.Channel != "open:room" || seen.Topic != topic.Path || string(seen.Data) != `{"t":"hi"}` || seen.ID == "" || seen.Client.Transport != "rest" {
				t.Fatalf("the hook was called with %+v", seen)
			}
			if tc.want != "" {
				if err != nil || string(m.Data) != tc.want {
					t.Fatalf("published %s, %v; want %s", m.Data, err, tc.want)
				}
				return
			}
			if got := store.ErrorCode(err); got != tc.code {
				t.Fatalf("error %v (code %q), want code %q", err, got, tc.code)
			}
		})
	}
}

func TestHookOverload(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	entered := make(chan struct{})
	a := hookApp(t, func(ctx context.Context, c HookCall) (HookReply, error) {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return HookReply{}, nil
	}, func(o *Options) { o.Hooks.MaxConcurrent, o.Hooks.MaxQueued = 1, -1 })
	topic := stream.Topic{Kind: stream.TopicChannel, Channel: "open:room", Path: stream.MessagesTopic("open:room")}
	done := make(chan error, 1)
	go func() {
		_, err := a.Publish(context.Background(), everyone, topic, json.RawMessage(`1`), ClientInfo{})
		done <- err
	}()
	<-entered
	_, err := a.Publish(t.Context(), everyone, topic, json.RawMessage(`2`), ClientInfo{})
	var hf *HookFailedError
	if !errors.As(err, &hf) || !hf.Overloaded || store.ErrorCode(err) != store.CodeUnavailable {
		t.Fatalf("second publish: %v, want overloaded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first publish: %v", err)
	}
}

func TestRPCPolicy(t *testing.T) {
	a := hookApp(t, func(_ context.Context, c HookCall) (HookReply, error) {
		if c.Method != "open:move" || c.Data != nil {
			t.Errorf("rpc call %+v", c)
		}
		return HookReply{Data: json.RawMessage(`{"ok":true}`)}, nil
	}, nil)
	ctx := t.Context()
	if data, err := a.RPC(ctx, everyone, RPCRequest{Method: "open:move"}); err != nil || string(data) != `{"ok":true}` {
		t.Fatalf("rpc: %s %v", data, err)
	}
	for _, tc := range []struct {
		method string
		p      auth.Principal
		data   string
		code   store.Code
	}{
		{"open:other", everyone, "", store.CodeNotFound}, // not in the allow-list
		{"plain", everyone, "", store.CodeNotFound},      // no global RPC hook
		{"-bad", everyone, "", store.CodeInvalid},        // invalid name
		{"open:move", nobody, "", store.CodeUnauthenticated},
		{"open:move", everyone, `"` + strings.Repeat("x", 100) + `"`, store.CodeTooLarge},
	} {
		_, err := a.RPC(ctx, tc.p, RPCRequest{Method: tc.method, Data: json.RawMessage(tc.data)})
		code := store.ErrorCode(err)
		if errors.Is(err, auth.ErrNoToken) {
			code = store.CodeUnauthenticated
		}
		if code != tc.code {
			t.Errorf("%s: %v (code %q), want %q", tc.method, err, code, tc.code)
		}
	}
}

func TestConnectHook(t *testing.T) {
	var grants []string
	a := hookApp(t, func(_ context.Context, c HookCall) (HookReply, error) {
		return HookReply{Grants: grants, Meta: json.RawMessage(`{"name":"A"}`)}, nil
	}, nil)
	p := auth.Principal{Kind: auth.KindJWT, Subject: "alice", Grants: mustGrants(t, "read:channels/a/**")}
	grants = []string{"publish:channels/{sub}/messages"}
	res, err := a.Connect(t.Context(), p, ClientInfo{Transport: "websocket"})
	if err != nil || string(res.Meta) != `{"name":"A"}` || !res.Principal.Can(auth.ActionPublish, "channels/alice/messages") || p.Can(auth.ActionPublish, "channels/alice/messages") {
		t.Fatalf("connect: %+v %v", res, err)
	}
	grants = []string{"not a grant"}
	if _, err := a.Connect(t.Context(), p, ClientInfo{}); store.ErrorCode(err) != store.CodeUnavailable {
		t.Fatalf("connect with an invalid grant: %v", err)
	}
}

// nobody may do nothing.
var nobody = auth.Principal{Kind: auth.KindAnonymous}

func mustGrants(t *testing.T, gs ...string) auth.Grants {
	t.Helper()
	out, err := auth.ParseGrants(gs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
