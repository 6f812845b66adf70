package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// describe turns a failed attempt's error into one whose message is safe
// for the webhook's owner: no URL (its path or query may hold a token),
// no local addresses, only what went wrong and with which host. parent is
// the caller's context and attempt the one bounded by timeout; a refused
// address names flag, the way to allow it.
func describe(parent, attempt context.Context, err error, timeout time.Duration, host, flag string) error {
	var (
		be  *blockedError
		de  *net.DNSError
		cve *tls.CertificateVerificationError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
		oe  *net.OpError
		ne  net.Error
	)
	switch {
	case errors.As(err, &be):
		return fmt.Errorf("connect: target %w%s", be, allowHint(flag))
	case parent.Err() != nil:
		return errors.New("canceled before a response (the delivery was stopped)")
	case errors.Is(attempt.Err(), context.DeadlineExceeded):
		return fmt.Errorf("timed out after %s", timeout)
	case errors.As(err, &de) && de.IsNotFound:
		return fmt.Errorf("dns lookup of %s failed: the host does not resolve", de.Name)
	case errors.As(err, &de):
		return fmt.Errorf("dns lookup of %s failed", de.Name)
	case errors.As(err, &cve):
		return fmt.Errorf("tls: the certificate of %s is not valid: %v", host, cve.Err)
	case errors.As(err, &rhe), errors.Is(err, http.ErrSchemeMismatch):
		return fmt.Errorf("tls handshake with %s failed: the receiver does not speak TLS (an http:// URL?)", host)
	case errors.As(err, &ae):
		return fmt.Errorf("tls handshake with %s failed: %v", host, ae)
	case errors.As(err, &oe):
		what := map[string]string{"dial": "connect to", "read": "reading the response from", "write": "sending the request to"}[oe.Op]
		if what == "" {
			what = oe.Op + " with"
		}
		return fmt.Errorf("%s %s failed: %s", what, host, syscallText(oe.Err))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s closed the connection without answering", host)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("request to %s timed out", host)
	default:
		return fmt.Errorf("request to %s failed: %v", host, unwrapURLError(err))
	}
}

// syscallText is an OpError's cause without the addresses: the errno's
// text ("connection refused") when there is one.
func syscallText(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

// unwrapURLError drops the *url.Error around the client's errors: its
// message repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
