package hub

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

func TestMessage(t *testing.T) {
	data := []byte(`{"type":"event","topic":"channels/a/messages"}`)
	m := NewMessage(data)
	if string(m.Bytes()) != string(data) || m.Size() != len(data) {
		t.Fatalf("Bytes, Size = %q, %d", m.Bytes(), m.Size())
	}
}

func TestMessagePreparedOnce(t *testing.T) {
	m := NewMessage([]byte(`{"type":"event"}`))
	const n = 8
	got := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			pm, err := m.Prepared()
			if err != nil {
				t.Error(err)
			}
			got[i] = pm
		})
	}
	wg.Wait()
	if got[0] == nil {
		t.Fatal("Prepared returned nil")
	}
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("Prepared #%d returned a different PreparedMessage", i)
		}
	}
}

// TestMessagePreparedOnTheWire writes one Message's PreparedMessage to two
// real WebSocket connections and checks that both clients read the frame.
func TestMessagePreparedOnTheWire(t *testing.T) {
	m := NewMessage([]byte(`{"type":"event","cursor":"c1"}`))
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		pm, err := m.Prepared()
		if err != nil {
			t.Error(err)
			return
		}
		if err := c.WritePreparedMessage(pm); err != nil {
			t.Error(err)
		}
		c.ReadMessage() // wait for the client to hang up
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for range 2 {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.ReadMessage()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if typ != websocket.TextMessage || string(data) != string(m.Bytes()) {
			t.Fatalf("read %d %q, want text %q", typ, data, m.Bytes())
		}
	}
}

func TestNewEvent(t *testing.T) {
	tests := []struct {
		name        string
		m           *Message
		key, cursor string
		seq         int64
	}{
		{"Event", NewEvent([]byte(`{}`), "channels/a/messages", "c42", 42), "channels/a/messages", "c42", 42},
		{"Plain", NewMessage([]byte(`{}`)), "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.m.Key() != tt.key || tt.m.Cursor() != tt.cursor || tt.m.Seq() != tt.seq {
				t.Fatalf("Key, Cursor, Seq = %q, %q, %d; want %q, %q, %d",
					tt.m.Key(), tt.m.Cursor(), tt.m.Seq(), tt.key, tt.cursor, tt.seq)
			}
			if string(tt.m.Bytes()) != `{}` {
				t.Fatalf("Bytes = %q", tt.m.Bytes())
			}
		})
	}
}
