// The chaos test's client: one WebSocket client that follows a collection
// and a channel, is reset at random moments, resumes by cursor and checks
// that every change arrives exactly once and in order.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/stream"
)

type mirrorEntry struct {
	rev  int64
	data string
}

// chaosClient is one reconnecting WebSocket client. Its goroutine owns
// every field; the test reads them after it ends.
type chaosClient struct {
	id            int
	url           string
	coll, channel string
	v             *specval.AsyncAPI
	t             *testing.T
	// minLife and maxLife bound a connection's life before its reset.
	minLife, maxLife time.Duration

	mirror   map[string]mirrorEntry
	synced   bool   // the mirror is complete at resCursor
	resCur   string // resume point of the resource subscription
	lastRev  int64
	chCur    string // resume point of the channel subscription
	lastOff  int64
	resets   int
	events   int
	messages int

	conn *websocket.Conn
	tcp  *net.TCPConn
}

func (c *chaosClient) errorf(format string, args ...any) {
	c.t.Errorf("client %d: %s", c.id, fmt.Sprintf(format, args...))
}

// run connects, follows both topics, and reconnects after each reset
// until the writers have stopped and it has caught up with finalPos.
func (c *chaosClient) run(finalSet <-chan struct{}, finalPos func() (rev, off int64)) {
	for {
		calm := false
		select {
		case <-finalSet:
			calm = true
		default:
		}
		if !c.connect() {
			return
		}
		var dropped atomic.Bool
		timer := time.NewTimer(time.Hour)
		if !calm {
			// Reset the TCP connection at a random moment: no close frame,
			// the server sees ECONNRESET.
			tcp := c.tcp
			timer = time.AfterFunc(c.minLife+rand.N(c.maxLife-c.minLife), func() {
				dropped.Store(true)
				_ = tcp.SetLinger(0)
				_ = tcp.Close()
			})
		}
		caughtUp := func() bool {
			if !calm {
				return false
			}
			rev, off := finalPos()
			return c.synced && c.lastRev >= rev && c.lastOff >= off
		}
		for !caughtUp() {
			if calm {
				_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			}
			_, b, err := c.conn.ReadMessage()
			if err != nil {
				if dropped.Load() {
					break
				}
				c.errorf("read: %v (synced %v, rev %d, off %d)", err, c.synced, c.lastRev, c.lastOff)
				return
			}
			if !c.apply(b) {
				return
			}
		}
		timer.Stop()
		if dropped.Load() {
			c.resets++
			continue
		}
		return // caught up
	}
}

// connect dials, subscribes to both topics (snapshot the first time and
// until a snapshot completes, else resume) and reads both replies.
func (c *chaosClient) connect() bool {
	var tcp *net.TCPConn
	d := websocket.Dialer{
		HandshakeTimeout: 20 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				tcp = conn.(*net.TCPConn)
			}
			return conn, err
		},
	}
	conn, resp, err := d.Dial(c.url, nil)
	if err != nil {
		c.errorf("dial: %v (%v)", err, resp)
		return false
	}
	c.conn, c.tcp = conn, tcp
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	if f, ok := c.read(); !ok || f["type"] != "welcome" {
		c.errorf("first frame %v", f)
		return false
	}
	resSub := map[string]any{"type": "subscribe", "ref": "r", "topic": "collections/" + c.coll + "/resources"}
	if c.synced {
		resSub["since"] = c.resCur
	} else {
		resSub["snapshot"] = true
		c.mirror = map[string]mirrorEntry{}
	}
	chSub := map[string]any{"type": "subscribe", "ref": "c", "topic": "channels/" + c.channel + "/messages", "meta": map[string]any{"client": c.id}}
	if c.chCur != "" {
		chSub["since"] = c.chCur
	}
	for _, f := range []map[string]any{resSub, chSub} {
		if err := conn.WriteJSON(f); err != nil {
			c.errorf("subscribe: %v", err)
			return false
		}
	}
	// Replies come first for each subscription; events of the first may
	// precede the second reply.
	for replies := 0; replies < 2; {
		_, b, err := conn.ReadMessage()
		if err != nil {
			c.errorf("reading replies: %v", err)
			return false
		}
		f, ok := c.decode(b)
		if !ok {
			return false
		}
		if f["type"] != "reply" {
			if !c.apply(b) {
				return false
			}
			continue
		}
		replies++
		if f["ok"] != true {
			c.errorf("subscribe refused: %v", f)
			return false
		}
		body := f["body"].(map[string]any)
		cur := body["cursor"].(string)
		switch f["ref"] {
		case "r":
			want := "snapshot"
			if c.synced {
				want = "since"
			}
			if body["start"] != want {
				c.errorf("resource subscribe start %v, want %s", body["start"], want)
				return false
			}
		case "c":
			if c.chCur == "" {
				c.chCur, c.lastOff = cur, c.pos(cur)
			} else if body["start"] != "since" || cur != c.chCur {
				c.errorf("channel resume reply %v, want since %s", body, c.chCur)
				return false
			}
		}
	}
	return true
}

func (c *chaosClient) read() (map[string]any, bool) {
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.errorf("read: %v", err)
		return nil, false
	}
	return c.decode(b)
}

func (c *chaosClient) decode(b []byte) (map[string]any, bool) {
	if err := c.v.ValidateServerFrame(b); err != nil {
		c.errorf("frame violates spec/asyncapi.yaml: %v\n%s", err, b)
		return nil, false
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		c.errorf("frame is not JSON: %s", b)
		return nil, false
	}
	return f, true
}

func (c *chaosClient) pos(cursor string) int64 {
	cur, err := stream.ParseCursor(cursor)
	if err != nil {
		c.errorf("cursor %q: %v", cursor, err)
	}
	return cur.Pos
}

// apply folds one frame into the client's state and checks ordering:
// resource revisions and channel offsets must each be contiguous.
func (c *chaosClient) apply(b []byte) bool {
	f, ok := c.decode(b)
	if !ok {
		return false
	}
	topic, _ := f["topic"].(string)
	isChannel := strings.HasPrefix(topic, "channels/")
	switch f["type"] {
	case "event":
		cur := f["cursor"].(string)
		if isChannel {
			off := int64(f["message"].(map[string]any)["offset"].(float64))
			if off != c.lastOff+1 {
				c.errorf("channel message offset %d after %d (duplicate, gap or reorder)", off, c.lastOff)
				return false
			}
			c.lastOff, c.chCur = off, cur
			c.messages++
			return true
		}
		e := entryFromFrame(f)
		if e.Event == "resource.snapshot" {
			if c.synced {
				c.errorf("snapshot event after synced")
				return false
			}
			c.mirror[e.ID] = mirrorEntry{rev: e.Rev, data: e.Data}
			return true
		}
		if !c.synced {
			c.errorf("live event %v before synced", e)
			return false
		}
		if e.Rev != c.lastRev+1 {
			c.errorf("resource revision %d after %d (duplicate, gap or reorder)", e.Rev, c.lastRev)
			return false
		}
		c.lastRev, c.resCur = e.Rev, cur
		c.events++
		if e.Event == "resource.deleted" {
			delete(c.mirror, e.ID)
		} else {
			c.mirror[e.ID] = mirrorEntry{rev: e.Rev, data: e.Data}
		}
	case "synced":
		c.synced = true
		c.resCur = f["cursor"].(string)
		c.lastRev = c.pos(c.resCur)
	case "bookmark":
		cur := f["cursor"].(string)
		p := c.pos(cur)
		if isChannel {
			if p != c.lastOff {
				c.errorf("channel bookmark at %d, last message %d", p, c.lastOff)
				return false
			}
			c.chCur = cur
		} else if c.synced {
			if p != c.lastRev {
				c.errorf("resource bookmark at %d, last event %d", p, c.lastRev)
				return false
			}
			c.resCur = cur
		}
	case "presence":
	default:
		c.errorf("unexpected frame %s", b)
		return false
	}
	return true
}

// leave ends the client's connection: a close frame for even clients, a
// TCP reset for odd ones.
func (c *chaosClient) leave() {
	if c.conn == nil {
		return
	}
	if c.id%2 == 0 {
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		_ = c.conn.Close()
		return
	}
	_ = c.tcp.SetLinger(0)
	_ = c.tcp.Close()
}
