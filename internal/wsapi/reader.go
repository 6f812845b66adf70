package wsapi

// The connection's reader: frames from the epoll poller (readReady) or a
// blocking reader goroutine (readLoop), checked (UTF-8, I-JSON, the
// AsyncAPI schemas) and dispatched one at a time, in order.

import (
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/ijson"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/wire"
)

// watch registers a polled connection with its poller, unless it has
// already ended. Errors: as poller.add.
func (c *conn) watch() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rdone {
		return nil
	}
	return c.poller.add(c)
}

// readBufs are the polled readers' buffers, held only while reading.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

// readReady reads what a polled connection's socket holds, handles every
// complete frame, and re-arms the socket; it runs in a goroutine of its own
// that exits when the socket has nothing more, so an idle connection keeps
// only its parser state (no goroutine, no buffer).
func (c *conn) readReady() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rdone {
		return
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	for {
		n, err := readNonblock(c.rawConn, *bp)
		if errors.Is(err, errWouldBlock) {
			break
		}
		if err == nil && n == 0 {
			err = io.EOF
		}
		if err != nil {
			c.closeWith(0, "", err)
			c.rdone = true
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if !c.feed((*bp)[:n]) || c.ctx.Err() != nil {
			c.rdone = true
			return
		}
		if n < len(*bp) {
			break // drained, most likely; arming tells if not
		}
	}
	if err := c.poller.arm(c); err != nil {
		c.closeWith(0, "", err)
		c.rdone = true
	}
}

// feed parses bytes read by readReady and handles the frames they
// complete; false means stop reading.
func (c *conn) feed(b []byte) bool {
	cont := true
	stop, err := c.parser.feed(b, func(op byte, p []byte) bool {
		switch op {
		case opText:
			cont = c.message(websocket.TextMessage, p) && c.ctx.Err() == nil
		case opBinary:
			cont = c.message(websocket.BinaryMessage, p)
		case opPing:
			if err := c.ws.WriteControl(websocket.PongMessage, p, time.Now().Add(c.srv.cfg.WriteWait)); err != nil {
				c.closeWith(0, "", err)
				cont = false
			}
		case opPong:
		case opClose:
			if code, err := parseClose(p); err != nil {
				c.closeFor(err)
			} else {
				c.closeEcho(code)
			}
			cont = false
		}
		return cont
	})
	if err != nil {
		c.closeFor(err)
		return false
	}
	return !stop && cont
}

// closeFor closes the connection over a read error: with its close code
// when it is a *closeError (a protocol violation, a message too big),
// without a close frame otherwise.
func (c *conn) closeFor(err error) {
	var ce *closeError
	if errors.As(err, &ce) {
		c.closeWith(ce.Code, ce.Reason, nil)
		return
	}
	c.closeWith(0, "", err)
}

func (c *conn) readLoop() {
	cfg := c.srv.cfg
	c.ws.SetReadLimit(cfg.MaxFrameBytes)
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
	})
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// gorilla has sent 1009 already.
				c.closeWith(0, "", nil)
			} else {
				c.closeWith(0, "", err)
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(cfg.PongWait))
		if !c.message(typ, data) || c.ctx.Err() != nil {
			return
		}
	}
}

// message handles one client message; false means stop reading (the
// connection is closing).
func (c *conn) message(typ int, data []byte) bool {
	cfg := c.srv.cfg
	if typ != websocket.TextMessage {
		c.closeWith(CloseUnsupported, "binary messages are not supported; send JSON text frames", nil)
		return false
	}
	if !utf8.Valid(data) {
		// RFC 6455 §8.1; passing the bytes on would put invalid UTF-8
		// into other clients' text frames.
		c.closeWith(CloseInvalidPayload, "text frames must be valid UTF-8", nil)
		return false
	}
	if !json.Valid(data) && ijson.IsSyntax(ijson.Check(data)) {
		// Not JSON at all. JSON that is only too deep for encoding/json
		// (or not I-JSON) gets an error reply from decodeFrame instead.
		c.closeWith(CloseUnsupported, "frames must be JSON objects", nil)
		return false
	}
	if c.limit != nil {
		if ok, _, retry := c.limit.Take(time.Now()); !ok {
			c.refused++
			if c.refused > cfg.FrameBurst {
				c.closeWith(CloseTooManyRequest, "rate limit exceeded", nil)
				return false
			}
			c.rateLimited(data, retry)
			return true
		}
		c.refused = 0
	}
	c.handle(data)
	return true
}

// handle validates one client frame against the AsyncAPI schemas and
// dispatches it; an invalid frame gets an error reply naming the field.
func (c *conn) handle(data []byte) {
	c.framesIn.Add(1)
	typ, frame, ref, err := decodeFrame(c.srv.cfg.Validator, data)
	if err != nil {
		c.srv.metrics.invalid.Inc()
		p := wire.InvalidFrame(err)
		if ref != "" {
			c.reply(ref, nil, &p)
		} else {
			c.send(ErrorFrame{Type: "error", Problem: p})
		}
		return
	}
	c.srv.metrics.framesIn.WithLabelValues(typ).Inc()
	switch f := frame.(type) {
	case Subscribe:
		c.subscribe(f)
	case Unsubscribe:
		c.unsubscribe(f)
	case Ping:
		c.reply(f.Ref, struct{}{}, nil)
	case Publish:
		c.publish(f)
	case Auth:
		c.auth(f)
	case RPC:
		c.rpc(f)
	}
}

// decodeFrame checks that a client frame is I-JSON (RFC 7493), validates
// it against spec/asyncapi.yaml and decodes it into its Go type. It
// returns the frame's ref whenever one can be read (also from a frame
// nested too deep to decode), so even an invalid frame can be answered.
// Errors: a *specval.FrameError naming the offending members — for a
// frame that is not I-JSON, the duplicate member or out-of-range number
// (or, for nesting beyond ijson.MaxDepth, the limit) and its byte offset.
func decodeFrame(v *specval.AsyncAPI, data []byte) (typ string, frame any, ref string, err error) {
	head, ierr := ijson.CheckMembers(data, "ref", "type")
	var r string
	if json.Unmarshal(head[0], &r) == nil && len(r) <= 64 {
		ref = r
	}
	if ierr != nil {
		fe, refUnclear := ijsonFrameError(ierr, head[1])
		if refUnclear {
			ref = ""
		}
		return typ, nil, ref, fe
	}
	typ, err = v.ValidateClientFrame(data)
	if err != nil {
		return typ, nil, ref, err
	}
	switch typ {
	case "subscribe":
		var f Subscribe
		err = json.Unmarshal(data, &f)
		frame = f
	case "unsubscribe":
		var f Unsubscribe
		err = json.Unmarshal(data, &f)
		frame = f
	case "ping":
		var f Ping
		err = json.Unmarshal(data, &f)
		frame = f
	case "publish":
		var f Publish
		err = json.Unmarshal(data, &f)
		frame = f
	case "auth":
		var f Auth
		err = json.Unmarshal(data, &f)
		frame = f
	case "rpc":
		var f RPC
		err = json.Unmarshal(data, &f)
		frame = f
	default:
		return typ, nil, ref, &specval.FrameError{Type: typ, Fields: []specval.FieldError{{Pointer: "/type", Detail: "frame type is not supported by this server"}}}
	}
	if err != nil {
		return typ, nil, ref, &specval.FrameError{Type: typ, Fields: []specval.FieldError{{Detail: "does not decode: " + err.Error()}}}
	}
	return typ, frame, ref, nil
}
