package stream

import (
	"fmt"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []Cursor{{KindResource, "abc123", 0}, {KindChannel, "e-1", 1 << 40}} {
		got, err := ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("round trip %v → %v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "!!!", "eDox", Cursor{'x', "e", 1}.String(), "cjphYmM6LTE"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		}
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{KindResource, "0123abcd", 42}.String())
	f.Add(Cursor{KindChannel, "ep", 7}.String())
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil || again != c {
			t.Fatalf("%q → %v does not round-trip: %v %v", s, c, again, err)
		}
	})
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		in   string
		kind TopicKind
	}{
		{"collections/a/resources", TopicCollection},
		{"collections/a/resources/b", TopicResource},
		{"channels/chat:room.1/messages", TopicChannel},
		{"channels/room/presence", TopicPresence},
		{"collections/../resources", 0},
		{"collections/a/resources/../../x", 0},
		{"collections//resources", 0},
		{"collections/a", 0},
		{"/collections/a/resources", 0},
		{"channels/-x/messages", 0},
	}
	for _, tc := range tests {
		got, err := ParseTopic(tc.in)
		if tc.kind == 0 {
			if err == nil {
				t.Errorf("ParseTopic(%q) accepted", tc.in)
			}
			continue
		}
		if err != nil || got.Kind != tc.kind || got.Path != tc.in {
			t.Errorf("ParseTopic(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"collections/a/resources", "collections/a/resources/b", "channels/x/messages", "../x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTopic(s)
		if err != nil {
			return
		}
		if tp.Path != s {
			t.Fatalf("path %q != %q", tp.Path, s)
		}
		for _, seg := range []string{"..", "//"} {
			if contains(s, seg) {
				t.Fatalf("accepted %q", s)
			}
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestEventFor(t *testing.T) {
	selector, _ := store.ParseSelector("env=prod")
	sel := store.Predicate{Selector: selector}
	flt, _ := store.ParseFilter(`data.qty > 2 && labels.env == "prod"`)
	filter := store.Predicate{Filter: flt}
	res := func(env string) store.Resource {
		return store.Resource{Labels: map[string]string{"env": env}, Data: []byte(`{}`)}
	}
	qty := func(n int) *store.Resource {
		return &store.Resource{Labels: map[string]string{"env": "prod"}, Data: []byte(fmt.Sprintf(`{"qty":%d}`, n))}
	}
	tests := []struct {
		name   string
		ch     store.Change
		pred   store.Predicate
		want   string
		wantOK bool
	}{
		{"NoSelector", store.Change{Type: store.Updated, Resource: res("x")}, store.Predicate{}, EventUpdated, true},
		{"CreatedMatching", store.Change{Type: store.Created, Resource: res("prod")}, sel, EventCreated, true},
		{"CreatedOther", store.Change{Type: store.Created, Resource: res("dev")}, sel, "", false},
		{"Enters", store.Change{Type: store.Updated, Resource: res("prod"), PrevLabels: map[string]string{"env": "dev"}}, sel, EventCreated, true},
		{"Leaves", store.Change{Type: store.Updated, Resource: res("dev"), PrevLabels: map[string]string{"env": "prod"}}, sel, EventDeleted, true},
		{"Stays", store.Change{Type: store.Updated, Resource: res("prod"), PrevLabels: map[string]string{"env": "prod"}}, sel, EventUpdated, true},
		{"Outside", store.Change{Type: store.Updated, Resource: res("dev"), PrevLabels: map[string]string{"env": "dev"}}, sel, "", false},
		{"DeletedMatching", store.Change{Type: store.Deleted, Resource: res("prod"), PrevLabels: map[string]string{"env": "prod"}}, sel, EventDeleted, true},
		{"DeletedOther", store.Change{Type: store.Deleted, Resource: res("dev"), PrevLabels: map[string]string{"env": "dev"}}, sel, "", false},
		{"FilterCreated", store.Change{Type: store.Created, Resource: *qty(3)}, filter, EventCreated, true},
		{"FilterCreatedOther", store.Change{Type: store.Created, Resource: *qty(2)}, filter, "", false},
		{"FilterEnters", store.Change{Type: store.Updated, Resource: *qty(3), Prev: qty(1), PrevLabels: map[string]string{"env": "prod"}}, filter, EventCreated, true},
		{"FilterLeaves", store.Change{Type: store.Updated, Resource: *qty(1), Prev: qty(3), PrevLabels: map[string]string{"env": "prod"}}, filter, EventDeleted, true},
		{"FilterStays", store.Change{Type: store.Updated, Resource: *qty(4), Prev: qty(3), PrevLabels: map[string]string{"env": "prod"}}, filter, EventUpdated, true},
		{"FilterOutside", store.Change{Type: store.Updated, Resource: *qty(0), Prev: qty(1), PrevLabels: map[string]string{"env": "prod"}}, filter, "", false},
		{"FilterDeleted", store.Change{Type: store.Deleted, Resource: *qty(3), Prev: qty(3), PrevLabels: map[string]string{"env": "prod"}}, filter, EventDeleted, true},
		{"FilterDeletedOther", store.Change{Type: store.Deleted, Resource: *qty(1), Prev: qty(1), PrevLabels: map[string]string{"env": "prod"}}, filter, "", false},
		// A change logged before previous states were kept: only its labels are known.
		{"FilterOldLogEntry", store.Change{Type: store.Updated, Resource: *qty(3), PrevLabels: map[string]string{"env": "dev"}}, filter, EventCreated, true},
		{"CollectionUpdated", store.Change{Type: store.CollectionUpdated, Resource: store.Resource{Collection: "c"}}, store.Predicate{}, EventCollectionUpdated, true},
		{"CollectionUpdatedSelector", store.Change{Type: store.CollectionUpdated, Resource: store.Resource{Collection: "c"}}, filter, EventCollectionUpdated, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := EventFor(NewChangeView(tc.ch), tc.pred)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Errorf("EventFor = %q %v, want %q %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// BenchmarkEventFor measures the filter evaluation per event and
// subscription: a 3-clause filter over a decoded change (the decoding is
// shared by every subscription of the change and measured apart).
func BenchmarkEventFor(b *testing.B) {
	flt, err := store.ParseFilter(`data.status == "paid" && data.qty > 2 && labels.env == "prod"`)
	if err != nil {
		b.Fatal(err)
	}
	p := store.Predicate{Filter: flt}
	prev := store.Resource{ID: "o-1", Labels: map[string]string{"env": "prod"},
		Data: []byte(`{"status":"new","qty":3,"customer":{"name":"Ada","tier":"gold"},"items":[{"sku":"a","n":1},{"sku":"b","n":2}],"note":"leave at the door"}`)}
	cur := prev
	cur.Data = []byte(`{"status":"paid","qty":3,"customer":{"name":"Ada","tier":"gold"},"items":[{"sku":"a","n":1},{"sku":"b","n":2}],"note":"leave at the door"}`)
	ch := store.Change{Type: store.Updated, Resource: cur, Prev: &prev, PrevLabels: prev.Labels}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v := NewChangeView(ch)
			EventFor(v, p) // decodes both states once
		}
	})
	b.Run("per-subscription", func(b *testing.B) {
		v := NewChangeView(ch)
		EventFor(v, p)
		b.ReportAllocs()
		for b.Loop() {
			if ev, ok := EventFor(v, p); !ok || ev != EventCreated {
				b.Fatal(ev, ok)
			}
		}
	})
}

func BenchmarkCursor(b *testing.B) {
	c := Cursor{KindResource, "9f86d081884c7d659a2feaa0c55ad015", 123456789}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseCursor(c.String()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseTraceparent(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
		sampled  bool
	}{
		{"OK", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, true},
		{"OKNotSampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, false},
		{"ErrEmpty", "", false, false},
		{"ErrShort", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", false, false},
		{"ErrVersionFF", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
		{"ErrZeroTrace", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},
		{"ErrZeroSpan", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, false},
		{"ErrNotHex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false, false},
		{"ErrSeparators", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false, false},
		{"ErrFlags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, ok := ParseTraceparent(tc.in)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if sc.TraceID().String() != tc.in[3:35] || sc.SpanID().String() != tc.in[36:52] || sc.IsSampled() != tc.sampled || !sc.IsRemote() {
				t.Errorf("span context = %+v", sc)
			}
		})
	}
}
