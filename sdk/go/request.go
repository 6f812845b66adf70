// Requests on a Conn: refs, the replies they wait for, Publish, RPC and
// Ping.

package tandem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

type call struct {
	done    chan reply // buffered: the reader never blocks
	onReply func(*serverFrame)
}

type reply struct {
	f   *serverFrame
	err error
}

func (cn *Conn) nextRefLocked() string {
	cn.ref++
	return strconv.FormatUint(cn.ref, 10)
}

// request sends the frame build makes for a fresh ref, waiting for a
// connection first, and returns the successful reply. Errors: ctx.Err(),
// ErrConnectionLost, the Conn's end error, *ProblemError.
func (cn *Conn) request(ctx context.Context, build func(ref string) any) (*serverFrame, error) {
	for {
		cn.mu.Lock()
		if cn.err != nil {
			err := cn.err
			cn.mu.Unlock()
			return nil, err
		}
		ws, ready := cn.ws, cn.ready
		if ws == nil {
			cn.mu.Unlock()
			select {
			case <-ready:
				continue
			case <-cn.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ref := cn.nextRefLocked()
		c := &call{done: make(chan reply, 1)}
		cn.pending[ref] = c
		cn.mu.Unlock()
		if err := cn.write(ws, build(ref)); err != nil {
			cn.mu.Lock()
			delete(cn.pending, ref)
			cn.mu.Unlock()
			return nil, fmt.Errorf("%w: %v", ErrConnectionLost, err)
		}
		select {
		case r := <-c.done:
			if r.err != nil {
				return nil, r.err
			}
			if !r.f.OK {
				return nil, replyError(r.f, "", "", "")
			}
			return r.f, nil
		case <-ctx.Done():
			cn.mu.Lock()
			delete(cn.pending, ref)
			cn.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

func replyError(f *serverFrame, topic, labels, cursor string) error {
	p := client.Problem{Type: "about:blank", Title: "Request failed", Status: 500}
	if f.Problem != nil {
		p = *f.Problem
	}
	return newProblemError(p, topic, labels, cursor)
}

// Publish publishes data (any JSON value; json.RawMessage is sent as is)
// to a channel and returns the message the server stored, with its cursor.
// If the connection is down it waits for the next one (bounded by ctx).
// Errors: ErrConnectionLost (the outcome is unknown), ErrForbidden,
// *ProblemError, ctx.Err().
func (cn *Conn) Publish(ctx context.Context, channel string, data any) (*client.ChannelMessage, error) {
	raw, err := rawJSON(data)
	if err != nil {
		return nil, err
	}
	f, err := cn.request(ctx, func(ref string) any {
		return publishFrame{Type: "publish", Ref: ref, Topic: ChannelTopic(channel), Data: raw}
	})
	if err != nil {
		return nil, err
	}
	var m client.ChannelMessage
	if err := json.Unmarshal(f.Body, &m); err != nil {
		return nil, fmt.Errorf("tandem: publish reply: %w", err)
	}
	return &m, nil
}

// RPC calls method of the application (the server forwards it to its RPC
// hook) with data (any JSON value; json.RawMessage is sent as is; nil sends
// none) and returns the data of its result (nil if the result carried
// none). Many RPCs may be in flight on one Conn; each gets its own reply,
// in whatever order the server answers. If the connection is down it waits
// for the next one (bounded by ctx). An RPC is never sent twice: if the
// connection drops after it was sent it fails with ErrConnectionLost, and
// whether the application ran it is unknown. Errors: *ProblemError (the
// application's problem; ErrNotFound for an unknown method, ErrForbidden
// without the call grant, status 503 hook-unavailable when the hook
// failed), ErrConnectionLost, ctx.Err(), the Conn's end error (ErrClosed, a
// *DisconnectedError), or data that does not encode.
func (cn *Conn) RPC(ctx context.Context, method string, data any) (json.RawMessage, error) {
	if method == "" {
		return nil, errors.New("tandem: RPC needs a method")
	}
	var raw json.RawMessage
	if data != nil {
		var err error
		if raw, err = rawJSON(data); err != nil {
			return nil, err
		}
	}
	f, err := cn.request(ctx, func(ref string) any {
		return rpcFrame{Type: "rpc", Ref: ref, Method: method, Data: raw}
	})
	if err != nil {
		return nil, err
	}
	var res rpcResult
	if len(f.Body) > 0 {
		if err := json.Unmarshal(f.Body, &res); err != nil {
			return nil, fmt.Errorf("tandem: rpc reply: %w", err)
		}
	}
	return res.Data, nil
}

// Ping sends an application-level ping and returns the round-trip time.
// Errors: as Publish.
func (cn *Conn) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := cn.request(ctx, func(ref string) any { return pingFrame{Type: "ping", Ref: ref} })
	return time.Since(start), err
}
