package wsapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/hub"
)

// TestPreparedOnTheWire writes one Message's prepared form to two real
// WebSocket connections and checks that both clients read the frame, and
// that both writes used the same prepared message.
func TestPreparedOnTheWire(t *testing.T) {
	m := hub.NewMessage([]byte(`{"type":"event","cursor":"c1"}`))
	up := websocket.Upgrader{}
	first, err := prepared(m)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		pm, err := prepared(m)
		if err != nil {
			t.Error(err)
			return
		}
		if pm != first {
			t.Error("prepared returned another PreparedMessage for the same Message")
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
