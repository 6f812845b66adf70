package wsapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/frames")

func sp(s string) *string { return &s }

// goldenFrames are canonical frames of every kind the protocol has.
func goldenFrames() []struct {
	name   string
	client bool
	frame  any
} {
	ts := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	res := api.Resource{Id: "o-1", Collection: "orders", Data: json.RawMessage(`{"item":"tea"}`), Labels: api.Labels{"env": "prod"}, Revision: 42, CreatedAt: ts, UpdatedAt: ts}
	cur := stream.Cursor{Kind: stream.KindResource, Epoch: "0123456789abcdef", Pos: 42}.String()
	fields := []api.ProblemField{{In: api.Body, Pointer: sp("/topic"), Name: sp("/topic"), Detail: "missing property 'topic'"}}
	return []struct {
		name   string
		client bool
		frame  any
	}{
		{"subscribe", true, Subscribe{Type: "subscribe", Ref: "1", Topic: "collections/orders/resources", Labels: "env=prod", Since: cur}},
		{"subscribe-snapshot", true, Subscribe{Type: "subscribe", Ref: "2", Topic: "collections/orders/resources/o-1", Snapshot: true}},
		{"unsubscribe", true, Unsubscribe{Type: "unsubscribe", Ref: "3", Topic: "collections/orders/resources"}},
		{"ping", true, Ping{Type: "ping", Ref: "4"}},
		{"auth", true, Auth{Type: "auth", Ref: "7", Token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"}},
		{"reply-auth", false, Reply{Type: "reply", Ref: "7", OK: true, Body: AuthResult{Subject: "alice", ExpiresAt: &ts}}},
		{"publish", true, Publish{Type: "publish", Ref: "6", Topic: "channels/chat:lobby/messages", Data: json.RawMessage(`{"text":"hi"}`)}},
		{"presence", false, wire.PresenceFrame{Type: "presence", Topic: "channels/chat:lobby/presence", Action: "join", Members: []api.PresenceMember{{Id: "alice", Connections: []api.PresenceConnection{{ConnectionId: "c0ffee", Meta: json.RawMessage(`{"name":"Alice"}`)}}}}}},
		{"welcome", false, Welcome{Type: "welcome", ConnectionID: "c0ffee", Protocol: Protocol, HeartbeatSeconds: 25, MaxFrameBytes: 65536}},
		{"reply-subscribe", false, Reply{Type: "reply", Ref: "1", OK: true, Body: SubscribeResult{Topic: "collections/orders/resources", Labels: "env=prod", Cursor: cur, Start: "since"}}},
		{"reply-empty", false, Reply{Type: "reply", Ref: "4", OK: true, Body: struct{}{}}},
		{"reply-problem", false, Reply{Type: "reply", Ref: "5", OK: false, Problem: &api.Problem{Type: "https://tandem.dev/problems/invalid-request", Title: "The request is invalid", Status: 400, Detail: sp("subscribe frame: /topic: missing property 'topic'"), Errors: &fields}}},
		{"event", false, wire.EventFrame{Type: "event", Topic: "collections/orders/resources", Labels: "env=prod", Event: stream.EventUpdated, Cursor: cur, Resource: &res}},
		{"synced", false, wire.SyncedFrame{Type: "synced", Topic: "collections/orders/resources", Cursor: cur}},
		{"bookmark", false, wire.BookmarkFrame{Type: "bookmark", Topic: "collections/orders/resources", Cursor: cur}},
		{"error-slow", false, ErrorFrame{Type: "error", Problem: api.Problem{Type: "https://tandem.dev/problems/slow-consumer", Title: "Slow consumer", Status: 429}, Cursors: []TopicCursor{{Topic: "collections/orders/resources", Cursor: cur}}}},
		{"rpc", true, RPC{Type: "rpc", Ref: "9", Method: "game:move", Data: json.RawMessage(`{"from":"e2","to":"e4"}`)}},
		{"reply-rpc", false, Reply{Type: "reply", Ref: "9", OK: true, Body: RPCResult{Data: json.RawMessage(`{"ok":true}`)}}},
		{"subscribed", false, Subscribed{Type: "subscribed", Topic: "channels/room:1/messages", Cursor: cur, Start: "live"}},
		{"unsubscribed", false, Unsubscribed{Type: "unsubscribed", Topic: "channels/room:1/messages"}},
		{"disconnect", false, Disconnect{Type: "disconnect", Code: CloseDisconnected, Reason: "banned", Reconnect: false}},
		{"error-topic", false, ErrorFrame{Type: "error", Topic: "collections/orders/resources", Problem: api.Problem{Type: "https://tandem.dev/problems/resync-required", Title: "Resync required", Status: 410}}},
	}
}

// TestGoldenFrames proves the Go frame types and the AsyncAPI schemas
// agree: each canonical frame encodes to its golden file, validates against
// its payload schema, and decodes back (strictly) to the same value.
func TestGoldenFrames(t *testing.T) {
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range goldenFrames() {
		t.Run(g.name, func(t *testing.T) {
			b, err := json.MarshalIndent(g.frame, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			path := filepath.Join("testdata", "frames", g.name+".json")
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("encoding changed:\n%s\nwant\n%s", b, want)
			}
			var typ string
			if g.client {
				typ, err = v.ValidateClientFrame(want)
			} else {
				err = v.ValidateServerFrame(want)
				var head struct{ Type string }
				_ = json.Unmarshal(want, &head)
				typ = head.Type
			}
			if err != nil {
				t.Fatalf("golden frame violates spec/asyncapi.yaml: %v", err)
			}
			seen[typ] = true
			ptr := reflect.New(reflect.TypeOf(g.frame))
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(ptr.Interface()); err != nil {
				t.Fatalf("golden frame does not decode into %T: %v", g.frame, err)
			}
			again, _ := json.Marshal(ptr.Elem().Interface())
			var a, w any
			_ = json.Unmarshal(again, &a)
			_ = json.Unmarshal(want, &w)
			if !reflect.DeepEqual(a, w) {
				t.Fatalf("round trip differs:\n%s", again)
			}
		})
	}
	// Every frame type in the spec has a golden frame.
	for _, typ := range append(v.ClientTypes(), v.ServerTypes()...) {
		if !seen[typ] {
			t.Errorf("no golden frame for %q", typ)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	typ, f, ref, err := decodeFrame(v, []byte(`{"type":"subscribe","ref":"9","topic":"collections/a/resources","snapshot":true}`))
	if err != nil || typ != "subscribe" || ref != "9" || !f.(Subscribe).Snapshot {
		t.Fatalf("decode: %v %v %v %v", typ, f, ref, err)
	}
	_, _, ref, err = decodeFrame(v, []byte(`{"type":"subscribe","ref":"10"}`))
	if err == nil || ref != "10" {
		t.Fatalf("invalid frame: ref %q err %v", ref, err)
	}
}

// TestDecodeFrameIJSON: a frame that is JSON but not I-JSON is refused
// with a FrameError naming the member, and its ref is still read.
func TestDecodeFrameIJSON(t *testing.T) {
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	tests := []struct {
		name, frame, ref, pointer, msg string
	}{
		{"DuplicateTopic", `{"type":"subscribe","ref":"s","topic":"collections/c/resources","topic":"channels/x/messages"}`, "s", "/topic",
			`subscribe frame: /topic: duplicate member "topic" at byte 64`},
		{"NumberOverflow", `{"type":"publish","ref":"p","topic":"channels/x/messages","data":{"n":1e999999}}`, "p", "/data/n",
			"publish frame: /data/n: number 1e999999 is beyond the range of an IEEE 754 double at byte 70"},
		{"TooDeep", `{"type":"publish","ref":"n","topic":"channels/x/messages","data":` + deep + `}`, "n", "",
			"publish frame: (frame): nesting deeper than 10000 levels at byte 10064"},
		{"RefAfterDeepData", `{"data":` + deep + `,"type":"publish","ref":"late"}`, "late", "", "nesting deeper"},
		{"DuplicateRef", `{"type":"ping","ref":"a","ref":"b"}`, "", "/ref", `duplicate member "ref"`},
		{"DuplicateType", `{"type":"ping","type":"publish","ref":"t"}`, "t", "/type", `ping frame: /type: duplicate member "type"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, f, ref, err := decodeFrame(v, []byte(tc.frame))
			var fe *specval.FrameError
			if f != nil || !errors.As(err, &fe) || len(fe.Fields) != 1 {
				t.Fatalf("decodeFrame = %v, %v", f, err)
			}
			if ref != tc.ref || fe.Fields[0].Pointer != tc.pointer || !strings.Contains(fe.Error(), tc.msg) {
				t.Fatalf("ref %q, pointer %q, %q; want ref %q, pointer %q, message with %q", ref, fe.Fields[0].Pointer, fe.Error(), tc.ref, tc.pointer, tc.msg)
			}
		})
	}
}

// FuzzDecodeFrame: the frame decoder never panics, and whatever it accepts
// re-encodes to a frame that validates again.
func FuzzDecodeFrame(f *testing.F) {
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		f.Fatal(err)
	}
	for _, g := range goldenFrames() {
		if g.client {
			b, _ := json.Marshal(g.frame)
			f.Add(b)
		}
	}
	f.Add([]byte(`{"type":"subscribe","ref":{"x":1},"topic":7}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"type":"ping","ref":"1","ref":"2"}`))
	f.Add([]byte(`{"type":"publish","ref":"p","topic":"channels/x/messages","data":[1e999]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // the reader closes with 1003 before decoding
		}
		_, frame, _, err := decodeFrame(v, data)
		if err != nil {
			return
		}
		b, err := json.Marshal(frame)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.ValidateClientFrame(b); err != nil {
			t.Fatalf("accepted %s but its re-encoding %s is invalid: %v", data, b, err)
		}
	})
}
