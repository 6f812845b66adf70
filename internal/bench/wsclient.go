package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Payload keys the bench puts into every message or resource it writes:
// the send time in Unix nanoseconds and a sequence number. Latency is
// measured at the receiver as its clock minus benchT (same machine, same
// clock).
const (
	keyT = `"benchT":`
	keyN = `"benchN":`
)

// payload returns the JSON object a publisher or writer sends.
func payload(n int64, now time.Time) []byte {
	b := make([]byte, 0, 64)
	b = append(b, '{')
	b = append(b, keyT...)
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, ',')
	b = append(b, keyN...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '}')
	return b
}

// intAfter reads the integer that follows key in a frame without decoding
// the frame: receivers handle hundreds of thousands of frames a second on
// the server's machine, so they read only what they need.
func intAfter(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	var v int64
	j := 0
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		v = v*10 + int64(b[j]-'0')
	}
	return v, j > 0
}

// frameType returns the value of the frame's "type" member, which every
// Tandem server frame has first.
func frameType(frame []byte) string {
	const p = `{"type":"`
	if !bytes.HasPrefix(frame, []byte(p)) {
		var head struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(frame, &head)
		return head.Type
	}
	rest := frame[len(p):]
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return string(rest[:i])
	}
	return ""
}

// sourceAddrs spreads client sockets over several loopback source
// addresses (127.0.0.2, 127.0.0.3, …) so that tens of thousands of
// connections to one server port do not exhaust one address's ephemeral
// ports. It is empty (the kernel chooses) when the target is not IPv4
// loopback or n < 1.
type sourceAddrs struct {
	addrs []*net.TCPAddr
}

func newSourceAddrs(target *url.URL, n, offset int) sourceAddrs {
	ip := net.ParseIP(target.Hostname())
	if n < 1 || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return sourceAddrs{}
	}
	s := sourceAddrs{addrs: make([]*net.TCPAddr, n)}
	for i := range n {
		// 127.0.0.2 … 127.0.0.254, then 127.0.1.x, and so on.
		k := (offset + i) % (250 * 250)
		s.addrs[i] = &net.TCPAddr{IP: net.IPv4(127, 0, byte(k/250), byte(2+k%250))}
	}
	return s
}

// pick returns the source address for connection i (nil: any).
func (s sourceAddrs) pick(i int) net.Addr {
	if len(s.addrs) == 0 {
		return nil
	}
	return s.addrs[i%len(s.addrs)]
}

// wsURL turns the server's base URL into its WebSocket endpoint.
func wsURL(base *url.URL) string {
	u := *base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/ws"
	return u.String()
}

// dialWS opens one WebSocket connection from local and waits for the
// welcome frame. Buffers are small: an idle bench connection should cost
// the client little, since up to 20,000 share one process.
func dialWS(ctx context.Context, base *url.URL, local net.Addr, header http.Header) (*websocket.Conn, error) {
	nd := &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}
	d := websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  512,
		WriteBufferPool:  wsWritePool,
	}
	c, resp, err := d.DialContext(ctx, wsURL(base), header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket upgrade: HTTP %d: %w", resp.StatusCode, err)
		}
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading welcome: %w", err)
	}
	if frameType(b) != "welcome" {
		c.Close()
		return nil, fmt.Errorf("first frame is %q, want welcome", frameType(b))
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

var wsWritePool = &sync.Pool{}

// request sends a client frame with ref and reads frames until its reply;
// it is used before the connection's reader starts. Errors: the reply's
// problem, or a transport error.
func request(c *websocket.Conn, ref string, frame any) error {
	b, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			return err
		}
		if frameType(b) != "reply" {
			continue
		}
		var r struct {
			Ref     string          `json:"ref"`
			OK      bool            `json:"ok"`
			Problem json.RawMessage `json:"problem"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if r.Ref != ref {
			continue
		}
		if !r.OK {
			return fmt.Errorf("server refused: %s", r.Problem)
		}
		return nil
	}
}

// subscribe subscribes c to topic and waits for the reply.
func subscribe(c *websocket.Conn, topic string) error {
	return request(c, "s", map[string]any{"type": "subscribe", "ref": "s", "topic": topic})
}

// readPool holds message buffers for receivers; a connection borrows one
// only while a message is being read, so idle connections hold none.
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readFrame reads the next data message of c into a pooled buffer, which
// the caller must hand back with readPool.Put.
func readFrame(c *websocket.Conn) (*[]byte, error) {
	_, r, err := c.NextReader()
	if err != nil {
		return nil, err
	}
	bp := readPool.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			*bp = b[:0]
			readPool.Put(bp)
			return nil, err
		}
	}
	*bp = b
	return bp, nil
}
