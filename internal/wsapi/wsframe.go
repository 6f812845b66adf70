package wsapi

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0
	opText         = 1
	opBinary       = 2
	opClose        = 8
	opPing         = 9
	opPong         = 10
)

// errWouldBlock: the socket has nothing to read now.
var errWouldBlock = errors.New("would block")

// closeError is a violation of RFC 6455 by the client, or a message past
// the read limit: the connection is closed with Code.
type closeError struct {
	Code   int
	Reason string
}

func (e *closeError) Error() string { return strconv.Itoa(e.Code) + ": " + e.Reason }

// frameParser decodes client frames (RFC 6455 §5) from bytes fed in pieces
// of any size, so a connection can read whatever the socket holds without
// waiting for the rest of a frame. It unmasks payloads, reassembles
// fragmented messages, enforces the read limit on whole messages and
// checks what a server must check: masking, reserved bits, opcodes,
// control frame rules, continuation order. Its zero value with limit set
// is ready; between messages it holds no buffer.
type frameParser struct {
	limit int64 // a message longer than this is refused (1009)

	hdr  [14]byte
	hn   int // header bytes collected
	need int // header length, known once hn ≥ 2

	op     byte
	fin    bool
	mask   [4]byte
	mpos   int
	remain int64
	ctl    []byte // the control frame being read

	msgOp byte   // opcode of the message being assembled; 0: none
	msg   []byte // its payload so far
}

// feed consumes b. For every complete message and control frame it calls
// emit with the opcode (opText, opBinary, opClose, opPing, opPong) and the
// unmasked payload, which emit must not keep (a message's payload is its
// own allocation and may be kept). emit returns false to stop: feed then
// returns at once with stop true. Errors: *closeError.
func (p *frameParser) feed(b []byte, emit func(op byte, payload []byte) bool) (stop bool, err error) {
	for len(b) > 0 {
		if p.need == 0 || p.hn < p.need {
			// Header: 2 bytes, then the extended length and the mask.
			for len(b) > 0 && (p.need == 0 || p.hn < p.need) {
				p.hdr[p.hn] = b[0]
				p.hn++
				b = b[1:]
				if p.hn == 2 {
					if p.hdr[1]&0x80 == 0 {
						// Refuse now: an unmasked frame's header is shorter,
						// and waiting for 4 more bytes could wait forever.
						return false, &closeError{CloseProtocol, "client frames must be masked"}
					}
					p.need = 2 + 4
					switch p.hdr[1] & 0x7f {
					case 126:
						p.need += 2
					case 127:
						p.need += 8
					}
				}
			}
			if p.need == 0 || p.hn < p.need {
				return false, nil
			}
			if err := p.header(); err != nil {
				return false, err
			}
			if p.remain == 0 {
				if !p.complete(emit) {
					return true, nil
				}
			}
			continue
		}
		k := int64(len(b))
		if k > p.remain {
			k = p.remain
		}
		chunk := b[:k]
		b = b[k:]
		if p.op >= opClose {
			p.ctl = p.unmask(p.ctl, chunk)
		} else {
			p.msg = p.unmask(p.msg, chunk)
		}
		p.remain -= k
		if p.remain == 0 && !p.complete(emit) {
			return true, nil
		}
	}
	return false, nil
}

// header checks the collected header and starts its frame.
func (p *frameParser) header() error {
	b0, b1 := p.hdr[0], p.hdr[1]
	if b0&0x70 != 0 {
		return &closeError{CloseProtocol, "reserved bits set (no extension was negotiated)"}
	}
	if b1&0x80 == 0 {
		return &closeError{CloseProtocol, "client frames must be masked"}
	}
	p.fin, p.op = b0&0x80 != 0, b0&0x0f
	var n uint64
	rest := p.hdr[2:p.need]
	switch b1 & 0x7f {
	case 126:
		n = uint64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		n = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
		if n>>63 != 0 {
			return &closeError{CloseProtocol, "frame length has its most significant bit set"}
		}
	default:
		n = uint64(b1 & 0x7f)
	}
	copy(p.mask[:], rest)
	p.mpos = 0
	switch p.op {
	case opClose, opPing, opPong:
		if !p.fin {
			return &closeError{CloseProtocol, "control frames must not be fragmented"}
		}
		if n > 125 {
			return &closeError{CloseProtocol, "control frame payload longer than 125 bytes"}
		}
		p.ctl = make([]byte, 0, n)
	case opText, opBinary:
		if p.msgOp != 0 {
			return &closeError{CloseProtocol, "new message before the previous one's final frame"}
		}
		if p.limit > 0 && n > uint64(p.limit) {
			return p.tooBig()
		}
		p.msgOp = p.op
		p.msg = make([]byte, 0, min(n, 4096)) // grows as bytes arrive
	case opContinuation:
		if p.msgOp == 0 {
			return &closeError{CloseProtocol, "continuation frame without a message to continue"}
		}
		if p.limit > 0 && uint64(len(p.msg))+n > uint64(p.limit) {
			return p.tooBig()
		}
	default:
		return &closeError{CloseProtocol, "unknown opcode " + strconv.Itoa(int(p.op))}
	}
	p.remain = int64(n)
	return nil
}

func (p *frameParser) tooBig() error {
	return &closeError{CloseTooBig, "message longer than the " + strconv.FormatInt(p.limit, 10) + "-byte limit"}
}

// unmask appends chunk, unmasked, to dst.
func (p *frameParser) unmask(dst, chunk []byte) []byte {
	n := len(dst)
	dst = append(dst, chunk...)
	for i := n; i < len(dst); i++ {
		dst[i] ^= p.mask[p.mpos&3]
		p.mpos++
	}
	return dst
}

// complete ends the current frame, emitting what it completes.
func (p *frameParser) complete(emit func(byte, []byte) bool) bool {
	p.hn, p.need = 0, 0
	if p.op >= opClose {
		ctl := p.ctl
		p.ctl = nil
		return emit(p.op, ctl)
	}
	if !p.fin {
		return true
	}
	op, msg := p.msgOp, p.msg
	p.msgOp, p.msg = 0, nil
	return emit(op, msg)
}

// parseClose reads a close frame's payload (RFC 6455 §5.5.1, §7.4): the
// status code, 1005 when absent. Errors: *closeError for a one-byte
// payload, a code a peer may not send, or a reason that is not UTF-8.
func parseClose(p []byte) (int, error) {
	switch {
	case len(p) == 0:
		return websocket.CloseNoStatusReceived, nil
	case len(p) == 1:
		return 0, &closeError{CloseProtocol, "close frame with a one-byte payload"}
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, &closeError{CloseProtocol, "invalid close code " + strconv.Itoa(code)}
	}
	if !utf8.Valid(p[2:]) {
		return 0, &closeError{CloseInvalidPayload, "close reason is not valid UTF-8"}
	}
	return code, nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 §7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return true
	}
	return false
}
