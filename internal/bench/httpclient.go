package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// httpConn is a minimal HTTP/1.1 keep-alive client over one TCP
// connection: one request at a time, Content-Length or chunked replies.
// The load generator shares the machine with the server, so it must cost
// far less CPU per request than net/http's client does; this one writes a
// prebuilt request and parses only the status line and the framing headers.
type httpConn struct {
	dialer *net.Dialer
	addr   string // host:port
	host   string
	nc     net.Conn
	br     *bufio.Reader
	wbuf   []byte
	body   []byte
}

func newHTTPConn(base *url.URL, local net.Addr) *httpConn {
	return &httpConn{dialer: &net.Dialer{LocalAddr: local, Timeout: 10 * time.Second}, addr: hostPort(base), host: base.Host}
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" || u.Scheme == "wss" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

func (c *httpConn) connect(ctx context.Context) error {
	nc, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.nc = nc
	c.br = bufio.NewReaderSize(nc, 16<<10)
	return nil
}

// Close closes the connection.
func (c *httpConn) Close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// Do sends one request and reads the reply; the returned body is valid
// until the next call. A broken connection is redialled once.
// With token set it sends "Authorization: Bearer token".
func (c *httpConn) Do(ctx context.Context, method, path, contentType string, body []byte, token string) (int, []byte, error) {
	fresh := c.nc == nil
	status, b, err := c.do(ctx, method, path, contentType, body, token)
	if err != nil && !fresh && c.nc == nil && ctx.Err() == nil {
		// The server may have closed an idle keep-alive connection.
		status, b, err = c.do(ctx, method, path, contentType, body, token)
	}
	return status, b, err
}

func (c *httpConn) do(ctx context.Context, method, path, contentType string, body []byte, token string) (int, []byte, error) {
	if c.nc == nil {
		if err := c.connect(ctx); err != nil {
			return 0, nil, err
		}
	}
	w := c.wbuf[:0]
	w = append(w, method...)
	w = append(w, ' ')
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, c.host...)
	w = append(w, "\r\nUser-Agent: tandem-bench\r\n"...)
	if token != "" {
		w = append(w, "Authorization: Bearer "...)
		w = append(w, token...)
		w = append(w, "\r\n"...)
	}
	if body != nil {
		w = append(w, "Content-Type: "...)
		w = append(w, contentType...)
		w = append(w, "\r\nContent-Length: "...)
		w = strconv.AppendInt(w, int64(len(body)), 10)
		w = append(w, "\r\n"...)
	}
	w = append(w, "\r\n"...)
	w = append(w, body...)
	c.wbuf = w
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	} else {
		_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if _, err := c.nc.Write(w); err != nil {
		c.Close()
		return 0, nil, err
	}
	status, b, keep, err := c.readResponse(method == "HEAD")
	if err != nil || !keep {
		c.Close()
	}
	return status, b, err
}

var errMalformed = errors.New("malformed HTTP response")

func (c *httpConn) readResponse(head bool) (status int, body []byte, keepAlive bool, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, errMalformed
	}
	length := int64(-1)
	chunked := false
	keepAlive = line[7] == '1'
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, nil, false, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, nil, false, errMalformed
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			if asciiEqualFold(value, "close") {
				keepAlive = false
			} else if asciiEqualFold(value, "keep-alive") {
				keepAlive = true
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case head || status == 204 || status == 304 || status/100 == 1:
	case chunked:
		for {
			line, err = c.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			semi, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, perr := strconv.ParseInt(string(bytes.TrimSpace(semi)), 16, 64)
			if perr != nil || n < 0 {
				return 0, nil, false, errMalformed
			}
			if n == 0 {
				// Trailers, then the blank line.
				for {
					line, err = c.br.ReadSlice('\n')
					if err != nil {
						return 0, nil, false, err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			if c.body, err = readN(c.br, c.body, n); err != nil {
				return 0, nil, false, err
			}
			if _, err = c.br.Discard(2); err != nil {
				return 0, nil, false, err
			}
		}
	case length >= 0:
		if c.body, err = readN(c.br, c.body, length); err != nil {
			return 0, nil, false, err
		}
	default:
		// No framing: the body runs to the end of the connection.
		var buf bytes.Buffer
		if _, err = io.Copy(&buf, c.br); err != nil {
			return 0, nil, false, err
		}
		c.body = append(c.body, buf.Bytes()...)
		keepAlive = false
	}
	return status, c.body, keepAlive, nil
}

func readN(r *bufio.Reader, dst []byte, n int64) ([]byte, error) {
	if n > 64<<20 {
		return dst, fmt.Errorf("response body of %d bytes is too large for the bench client", n)
	}
	start := len(dst)
	dst = slices.Grow(dst, int(n))[:start+int(n)]
	_, err := io.ReadFull(r, dst[start:])
	return dst, err
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
