package wsapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
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
		if _, err := stream.EncodeEvent("collections/orders/resources", "", stream.EventUpdated, cur, r); err != nil {
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
