package stream

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

func TestCompositeCursor(t *testing.T) {
	orders := Cursor{Kind: KindResource, Epoch: "0123456789abcdef0123456789abcdef", Pos: 42}
	lobby := Cursor{Kind: KindChannel, Epoch: "0123456789abcdef", Pos: 7}
	id := EncodeComposite(map[string]string{
		"collections/orders/resources": orders.String(),
		"channels/chat:lobby/messages": lobby.String(),
	})
	if !IsComposite(id) || IsComposite(orders.String()) {
		t.Fatalf("IsComposite(%q) or IsComposite(%q) wrong", id, orders.String())
	}
	again := EncodeComposite(map[string]string{
		"channels/chat:lobby/messages": lobby.String(),
		"collections/orders/resources": orders.String(),
	})
	if again != id {
		t.Fatalf("equal positions encode differently: %q, %q", id, again)
	}
	c, err := ParseComposite(id)
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]Cursor{"collections/orders/resources": orders, "channels/chat:lobby/messages": lobby} {
		if got, ok := c.For(topic); !ok || got != want {
			t.Errorf("For(%s) = %+v, %v; want %+v", topic, got, ok, want)
		}
		// Any endpoint taking a cursor for one topic takes the composite.
		if got, err := ParseCursorFor(id, topic); err != nil || got != want {
			t.Errorf("ParseCursorFor(composite, %s) = %+v, %v", topic, got, err)
		}
	}
	if _, ok := c.For("collections/other/resources"); ok {
		t.Error("For found a topic the cursor does not hold")
	}
	_, err = ParseCursorFor(id, "collections/other/resources")
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "holds no position for topic collections/other/resources") {
		t.Errorf("ParseCursorFor(composite, other topic): %v", err)
	}
	if got, err := ParseCursorFor(orders.String(), "collections/orders/resources"); err != nil || got != orders {
		t.Errorf("ParseCursorFor(topic cursor) = %+v, %v", got, err)
	}
}

// TestCompositeCursorLegacy: the composite ids an earlier server sent
// (base64url JSON from subscription keys, selector and filter included)
// still resume their topics.
func TestCompositeCursorLegacy(t *testing.T) {
	orders := Cursor{Kind: KindResource, Epoch: "e1", Pos: 3}
	lobby := Cursor{Kind: KindChannel, Epoch: "e2", Pos: 9}
	b, _ := json.Marshal(map[string]string{
		"collections/orders/resources?env=prod&filter=data.qty > 2": orders.String(),
		"channels/chat:lobby/messages":                              lobby.String(),
	})
	id := "m." + base64.RawURLEncoding.EncodeToString(b)
	for topic, want := range map[string]Cursor{"collections/orders/resources": orders, "channels/chat:lobby/messages": lobby} {
		if got, err := ParseCursorFor(id, topic); err != nil || got != want {
			t.Errorf("ParseCursorFor(legacy, %s) = %+v, %v", topic, got, err)
		}
	}
}

// TestCompositeCursorLongest: the longest composite cursor the server can
// make (MaxStreamTopics topics of the longest topic path, each at a
// cursor with the longest epoch ParseCursor accepts and the largest
// position) fits the specs' Cursor maxLength, MaxCursorLen, and parses.
func TestCompositeCursorLongest(t *testing.T) {
	longest := Cursor{Kind: KindResource, Epoch: strings.Repeat("e", 64), Pos: math.MaxInt64}
	real := Cursor{Kind: KindResource, Epoch: strings.Repeat("f", 32), Pos: math.MaxInt64} // store epochs: 32 hex digits
	for _, c := range []struct {
		name string
		cur  Cursor
	}{{"LongestEpoch", longest}, {"StoreEpoch", real}} {
		t.Run(c.name, func(t *testing.T) {
			m := map[string]string{}
			for i := range MaxStreamTopics {
				prefix := fmt.Sprintf("collections/c%02d/resources/", i)
				m[prefix+strings.Repeat("x", 512-len(prefix))] = c.cur.String()
			}
			id := EncodeComposite(m)
			t.Logf("%d topics at %d-character cursors: a %d-character composite cursor (limit %d)", len(m), len(c.cur.String()), len(id), MaxCursorLen)
			if len(id) > MaxCursorLen {
				t.Fatalf("composite cursor of %d characters exceeds MaxCursorLen %d", len(id), MaxCursorLen)
			}
			got, err := ParseComposite(id)
			if err != nil {
				t.Fatal(err)
			}
			for topic := range m {
				if cur, ok := got.For(topic); !ok || cur != c.cur {
					t.Fatalf("For(%s) = %+v, %v", topic, cur, ok)
				}
			}
		})
	}
}

func TestCompositeCursorMalformed(t *testing.T) {
	tag := topicTag("channels/a/messages")
	entry := func(tag [8]byte, kind byte, epoch string, pos []byte) []byte {
		b := append(tag[:], kind, byte(len(epoch)))
		return append(append(b, epoch...), pos...)
	}
	ok := entry(tag, 'c', "e", []byte{1})
	enc := func(parts ...[]byte) string {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return "s1." + base64.RawURLEncoding.EncodeToString(b)
	}
	var many [][]byte
	for i := range MaxStreamTopics + 1 {
		many = append(many, entry(topicTag(fmt.Sprint(i)), 'c', "e", []byte{1}))
	}
	if _, err := ParseComposite(enc(ok)); err != nil {
		t.Fatalf("the well-formed entry is refused: %v", err)
	}
	for name, s := range map[string]string{
		"Empty":          "s1.",
		"NotBase64":      "s1.!!!",
		"ShortEntry":     enc(ok[:9]),
		"EpochCut":       enc(entry(tag, 'c', "epoch", nil)[:12]),
		"NoPosition":     enc(entry(tag, 'c', "e", nil)),
		"PositionCut":    enc(entry(tag, 'c', "e", []byte{0x80})),
		"PositionTooBig": enc(entry(tag, 'c', "e", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})),
		"BadKind":        enc(entry(tag, 'x', "e", []byte{1})),
		"EmptyEpoch":     enc(entry(tag, 'c', "", []byte{1})),
		"BadEpoch":       enc(entry(tag, 'c', "a:b", []byte{1})),
		"LongEpoch":      enc(entry(tag, 'c', strings.Repeat("e", 65), []byte{1})),
		"DuplicateTopic": enc(ok, ok),
		"TrailingByte":   enc(ok, []byte{0}),
		"TooManyTopics":  enc(many...),
		"TooLong":        "s1." + strings.Repeat("A", MaxCursorLen),
		"LegacyEmpty":    "m.",
		"LegacyNotJSON":  "m." + base64.RawURLEncoding.EncodeToString([]byte(`["a"]`)),
		"LegacyNoTopics": "m." + base64.RawURLEncoding.EncodeToString([]byte(`{}`)),
		"LegacyBadCur":   "m." + base64.RawURLEncoding.EncodeToString([]byte(`{"a":"bad"}`)),
		"OtherPrefix":    "x." + enc(ok)[3:],
	} {
		if _, err := ParseComposite(s); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: ParseComposite(%.60q) = %v, want ErrInvalid", name, s, err)
		}
	}
}
