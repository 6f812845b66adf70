package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rawFrame builds a client frame by hand, so tests can send what a
// well-behaved client library never would.
func rawFrame(fin bool, rsv, op byte, payload []byte, masked bool) []byte {
	b0 := op | rsv<<4
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	var b1 byte
	if masked {
		b1 = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		f = append(f, b1|byte(n))
	case n < 1<<16:
		f = append(f, b1|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, b1|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if !masked {
		return append(f, payload...)
	}
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i&3])
	}
	return f
}

// rawDial connects with gorilla's client, reads the welcome frame and
// hands back the connection for raw writes; pongs it receives are sent on
// the returned channel.
func rawDial(t *testing.T, s *testServer) (*websocket.Conn, <-chan string) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(s), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	pongs := make(chan string, 16)
	c.SetPongHandler(func(p string) error { pongs <- p; return nil })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || !strings.Contains(string(b), `"welcome"`) {
		t.Fatalf("welcome: %s %v", b, err)
	}
	return c, pongs
}

// readReply reads frames until the reply to ref, validating each.
func readReply(t *testing.T, c *websocket.Conn, ref string) map[string]any {
	t.Helper()
	v := asyncValidator(t)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for reply %s: %v", ref, err)
		}
		if err := v.ValidateServerFrame(b); err != nil {
			t.Errorf("server frame violates spec/asyncapi.yaml: %v\n%s", err, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["type"] == "reply" && m["ref"] == ref {
			return m
		}
	}
}

// readClose reads until the connection ends and returns the close code
// (-1 without a close frame).
func readClose(t *testing.T, c *websocket.Conn, within time.Duration) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v", within)
			}
			return closeCode(err)
		}
	}
}

// TestWSReaders runs the WebSocket framing rules against both ways of
// reading connections: epoll (the default: idle connections have no
// goroutine, frames arrive in arbitrary pieces) and a reader goroutine per
// connection (gorilla's reader).
func TestWSReaders(t *testing.T) {
	ping := func(ref string) []byte { return []byte(`{"type":"ping","ref":"` + ref + `"}`) }
	for _, mode := range []string{"epoll", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, "--ws-readers", mode, "--max-frame-bytes", "4096", "--ping-interval", "250ms")

			t.Run("FragmentedWithPingBetween", func(t *testing.T) {
				c, pongs := rawDial(t, s)
				msg := ping("frag")
				var b []byte
				b = append(b, rawFrame(false, 0, 1, msg[:5], true)...)
				b = append(b, rawFrame(true, 0, 9, []byte("p1"), true)...)
				b = append(b, rawFrame(false, 0, 0, msg[5:12], true)...)
				b = append(b, rawFrame(true, 0, 0, msg[12:], true)...)
				if _, err := c.NetConn().Write(b); err != nil {
					t.Fatal(err)
				}
				if r := readReply(t, c, "frag"); r["ok"] != true {
					t.Fatalf("reply %v", r)
				}
				select {
				case p := <-pongs:
					if p != "p1" {
						t.Fatalf("pong %q, want p1", p)
					}
				default:
					t.Fatal("no pong for the ping between fragments")
				}
			})

			t.Run("OneByteAtATime", func(t *testing.T) {
				c, _ := rawDial(t, s)
				// Two frames, the second with a 16-bit length.
				b := append(rawFrame(true, 0, 1, ping("a"), true), rawFrame(true, 0, 1, []byte(`{"type":"ping",`+strings.Repeat(" ", 200)+`"ref":"b"}`), true)...)
				for i := range b {
					if _, err := c.NetConn().Write(b[i : i+1]); err != nil {
						t.Fatal(err)
					}
					if i%40 == 0 {
						time.Sleep(time.Millisecond) // separate segments
					}
				}
				if r := readReply(t, c, "a"); r["ok"] != true {
					t.Fatalf("reply %v", r)
				}
				if r := readReply(t, c, "b"); r["ok"] != true {
					t.Fatalf("reply %v", r)
				}
			})

			t.Run("CloseIsEchoed", func(t *testing.T) {
				c, _ := rawDial(t, s)
				if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				if code := readClose(t, c, 5*time.Second); code != 4000 {
					t.Fatalf("close code %d, want the echoed 4000", code)
				}
			})

			for _, tc := range []struct {
				name  string
				bytes []byte
				code  int
				mode  string // only in this mode ("": both)
			}{
				{"Unmasked", rawFrame(true, 0, 1, ping("x"), false), 1002, ""},
				{"ReservedBit", rawFrame(true, 4, 1, ping("x"), true), 1002, ""},
				{"UnknownOpcode", rawFrame(true, 0, 3, ping("x"), true), 1002, ""},
				{"FragmentedControl", rawFrame(false, 0, 9, []byte("p"), true), 1002, ""},
				{"LongControl", rawFrame(true, 0, 9, make([]byte, 126), true), 1002, ""},
				{"ContinuationFirst", rawFrame(true, 0, 0, ping("x"), true), 1002, ""},
				{"TextDuringText", append(rawFrame(false, 0, 1, []byte(`{"ty`), true), rawFrame(true, 0, 1, ping("x"), true)...), 1002, ""},
				// gorilla's reader answers this with an empty close frame.
				{"OneByteClose", rawFrame(true, 0, 8, []byte{3}, true), 1002, "epoll"},
				{"ReservedCloseCode", rawFrame(true, 0, 8, []byte{0x03, 0xed}, true), 1002, ""}, // 1005
				{"TooBigInFragments", append(rawFrame(false, 0, 1, make([]byte, 3000), true), rawFrame(true, 0, 0, make([]byte, 3000), true)...), 1009, ""},
				{"TooBigAnnounced", rawFrame(true, 0, 1, make([]byte, 70000), true), 1009, ""},
				{"InvalidUTF8", rawFrame(true, 0, 1, []byte{'"', 0xff, '"'}, true), 1007, ""},
				{"Binary", rawFrame(true, 0, 2, ping("x"), true), 1003, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if tc.mode != "" && tc.mode != mode {
						t.Skipf("%s mode only", tc.mode)
					}
					c, _ := rawDial(t, s)
					if _, err := c.NetConn().Write(tc.bytes); err != nil && !isReset(err) {
						t.Fatal(err)
					}
					if code := readClose(t, c, 5*time.Second); code != tc.code {
						t.Fatalf("close code %d, want %d", code, tc.code)
					}
				})
			}

			t.Run("SilentClientDropped", func(t *testing.T) {
				silent, _ := rawDial(t, s)
				alive := s.dial(t) // its reader answers pings
				// Pings every 250 ms, dropped after 500 ms without a pong
				// (within 750 ms when polled); the live client has 500 ms to
				// answer each ping, ample even on a loaded machine.
				time.Sleep(1500 * time.Millisecond)
				// Dropped without a close frame: the client sees the end of
				// the stream (1006) or, when its pong answers to the pings
				// it had not read yet reach the closed socket first, a
				// reset.
				_ = silent.SetReadDeadline(time.Now().Add(3 * time.Second))
				for {
					_, _, err := silent.ReadMessage()
					if err == nil {
						continue
					}
					var ne net.Error
					switch {
					case errors.As(err, &ne) && ne.Timeout():
						t.Fatal("silent client still connected after 3 s")
					case isReset(err):
					case closeCode(err) != websocket.CloseAbnormalClosure:
						t.Fatalf("silent client: %v (close code %d), want 1006 or a reset (dropped without a close frame)", err, closeCode(err))
					}
					break
				}
				if r := alive.request(map[string]any{"type": "ping"}); r["ok"] != true {
					t.Fatalf("a client answering pings was dropped: %v", r)
				}
			})
		})
	}
}

// TestWSIdleConnectionsHoldNoGoroutine checks what the epoll reader is
// for: an idle connection costs no goroutine, where a reader goroutine per
// connection costs one each.
func TestWSIdleConnectionsHoldNoGoroutine(t *testing.T) {
	const n = 200
	for _, tc := range []struct {
		mode     string
		min, max int // goroutines added by n idle connections
	}{
		{"epoll", 0, n / 10},
		// At least 90 %: goroutines left by earlier tests may end meanwhile.
		{"goroutine", n * 9 / 10, 3 * n},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := startServer(t, "--ws-readers", tc.mode)
			runtime.GC()
			base := runtime.NumGoroutine()
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				conns[i], _ = rawDial(t, s)
			}
			// Writers linger 250 ms after their last frame.
			var added int
			deadline := time.Now().Add(10 * time.Second)
			for {
				added = runtime.NumGoroutine() - base
				if added <= tc.max || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond)
			added = runtime.NumGoroutine() - base
			if added < tc.min || added > tc.max {
				t.Fatalf("%d idle connections added %d goroutines, want %d..%d", n, added, tc.min, tc.max)
			}
			t.Logf("%d idle connections added %d goroutines", n, added)
			// Still served: the last connection answers.
			c := conns[n-1]
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","ref":"last"}`)); err != nil {
				t.Fatal(err)
			}
			if r := readReply(t, c, "last"); r["ok"] != true {
				t.Fatalf("reply %v", r)
			}
		})
	}
}

// TestWSShutdownWhileConnecting shuts the server down while clients keep
// connecting, so that some connections are closed by Shutdown before they
// have started (or been registered with the poller): every one of them
// must still end, and the server must stop within its shutdown timeout.
func TestWSShutdownWhileConnecting(t *testing.T) {
	for _, mode := range []string{"epoll", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, "--ws-readers", mode, "--shutdown-timeout", "10s")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var dialed atomic.Int64
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
					for {
						select {
						case <-stop:
							return
						default:
						}
						c, _, err := d.Dial(wsURL(s), nil)
						if err != nil {
							continue
						}
						dialed.Add(1)
						go func() {
							// Read until the server closes it.
							_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
							for {
								if _, _, err := c.ReadMessage(); err != nil {
									c.Close()
									return
								}
							}
						}()
					}
				}()
			}
			// Shut down once connections are flowing.
			for deadline := time.Now().Add(10 * time.Second); dialed.Load() < 20 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			t0 := time.Now()
			s.stop() // fails the test if run does not return cleanly within 20 s
			close(stop)
			wg.Wait()
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("shutdown took %v with connections arriving", d)
			}
			if dialed.Load() == 0 {
				t.Fatal("no connection was made before the shutdown")
			}
			t.Logf("%d connections; shutdown in %v", dialed.Load(), time.Since(t0).Round(time.Millisecond))
		})
	}
}
