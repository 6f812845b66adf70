package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxURLLength is the longest target URL CheckURL accepts.
const MaxURLLength = 2048

// resolveTimeout bounds CheckURL's DNS lookup.
const resolveTimeout = 2 * time.Second

// resolver is the part of *net.Resolver CheckURL uses (tests swap it).
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckURL validates a webhook target URL when a webhook is created or
// changed. It returns nil or an error whose message says what is wrong
// with the URL (the caller reports it against the url field):
//   - longer than MaxURLLength, unparsable, not absolute;
//   - a scheme other than http or https;
//   - no host, user info (credentials in URLs end up in logs), a fragment,
//     a port outside 1–65535;
//   - unless Options.AllowPrivate: a host that is, or resolves to any, address
//     CheckAddr refuses, or that is "localhost" or below ".localhost";
//   - a host name that does not resolve (within 2 s of ctx).
//
// Send checks the connected address again at dial time, so a host whose DNS
// answer changes after CheckURL is still refused.
func (s *Sender) CheckURL(ctx context.Context, raw string) error {
	return checkTarget(ctx, raw, s.allowPrivate, s.resolver, webhookAllowFlag)
}

// checkTarget is CheckURL for webhooks and hooks: allowPrivate lifts the
// address checks, and a refusal names flag as the way to do that.
func checkTarget(ctx context.Context, raw string, allowPrivate bool, r resolver, flag string) error {
	u, err := parseTarget(raw)
	if err != nil {
		return err
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if allowPrivate {
			return nil
		}
		if err := CheckAddr(addr); err != nil {
			return fmt.Errorf("url host %w%s", err, allowHint(flag))
		}
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if !allowPrivate && (name == "localhost" || strings.HasSuffix(name, ".localhost")) {
		return fmt.Errorf("url host %s is a loopback name%s", host, allowHint(flag))
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("url host %s does not resolve%s", host, lookupDetail(err))
	}
	if allowPrivate {
		return nil
	}
	for _, a := range addrs {
		var be *blockedError
		if err := CheckAddr(a); errors.As(err, &be) {
			return fmt.Errorf("url host %s resolves to %s, a %s address%s", host, a, be.kind, allowHint(flag))
		} else if err != nil {
			return fmt.Errorf("url host %s resolves to %w", host, err)
		}
	}
	return nil
}

// lookupDetail is the parenthesised reason a lookup failed ("" when the
// name simply does not exist).
func lookupDetail(err error) string {
	var de *net.DNSError
	switch {
	case err == nil:
		return " (no addresses)"
	case errors.As(err, &de) && de.IsNotFound:
		return ""
	case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		return " (the lookup timed out)"
	case errors.As(err, &de):
		return " (" + de.Err + ")"
	default:
		return ""
	}
}

// parseTarget checks what CheckURL checks without DNS or address rules:
// Send runs it too, before an attempt.
func parseTarget(raw string) (*url.URL, error) {
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("url is longer than %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL itself, quoted again
		}
		return nil, fmt.Errorf("url is not valid: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		if u.Scheme == "" {
			return nil, errors.New("url must be absolute, with scheme http or https")
		}
		return nil, fmt.Errorf("url scheme must be http or https, not %q", u.Scheme)
	case u.Opaque != "":
		return nil, errors.New("url must be absolute: http://host/path or https://host/path")
	case u.User != nil:
		return nil, errors.New("url must not contain user info (credentials in a URL end up in logs)")
	case strings.Contains(raw, "#"):
		return nil, errors.New("url must not have a fragment")
	case u.Hostname() == "":
		return nil, errors.New("url must have a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("url port %s is not in 1–65535", p)
		}
	}
	return u, nil
}
