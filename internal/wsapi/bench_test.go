package wsapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// BenchmarkEncodeEvent measures encoding one resource event frame, done
// once per change and subscription key (then shared by every subscriber).
func BenchmarkEncodeEvent(b *testing.B) {
	ts := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r := store.Resource{Collection: "orders", ID: "o-1", Data: json.RawMessage(`{"item":"tea","qty":2,"status":"shipped"}`),
		Labels: map[string]string{"env": "prod"}, Revision: 42, CreatedAt: ts, UpdatedAt: ts}
	cur := stream.Cursor{Kind: stream.KindResource, Epoch: "0123456789abcdef", Pos: 42}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (wire.Frames{}).Event(stream.Event{Topic: "collections/orders/resources", Name: stream.EventUpdated, Cursor: cur, Resource: &r}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeReply measures a connection-specific frame (a reply).
func BenchmarkEncodeReply(b *testing.B) {
	body := SubscribeResult{Topic: "collections/orders/resources", Cursor: "ci4wMTIzNDU2Nzg5YWJjZGVmOjQy", Start: "since"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(Reply{Type: "reply", Ref: "17", OK: true, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeFrame measures the inbound path of every client frame:
// AsyncAPI validation, then decoding into its Go type.
func BenchmarkDecodeFrame(b *testing.B) {
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		b.Fatal(err)
	}
	frames := map[string][]byte{
		"subscribe": []byte(`{"type":"subscribe","ref":"1","topic":"collections/orders/resources","labels":"env=prod"}`),
		"publish":   []byte(`{"type":"publish","ref":"2","topic":"channels/chat:lobby/messages","data":{"text":"hello","n":1}}`),
		"ping":      []byte(`{"type":"ping","ref":"3"}`),
	}
	for name, data := range frames {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if typ, _, _, err := decodeFrame(v, data); err != nil || typ != name {
					b.Fatalf("decodeFrame = %q, %v", typ, err)
				}
			}
		})
	}
}

// BenchmarkPrepared compares framing a message for 1,000 WebSocket
// subscribers once, through prepared (hub.Message.Framed), with building a
// PreparedMessage per subscriber. One op = one event to 1,000 subscribers.
func BenchmarkPrepared(b *testing.B) {
	const subscribers = 1000
	frame := []byte(`{"type":"event","topic":"collections/orders/resources","cursor":"AAAAAQAAAAAAAAAq",` +
		`"event":"updated","resource":{"id":"01J9Z8","revision":42,"data":{"status":"shipped","total":1299}}}`)
	b.Run("Once", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			m := hub.NewMessage(frame)
			for range subscribers {
				if _, err := prepared(m); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("PerSubscriber", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			for range subscribers {
				if _, err := websocket.NewPreparedMessage(websocket.TextMessage, frame); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
