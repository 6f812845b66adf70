package webhook

import (
	"fmt"
	"net/netip"
)

// The flags that lift the refusal of private targets, for webhooks and
// for hooks.
const (
	webhookAllowFlag = "--webhook-allow-private"
	hookAllowFlag    = "--hook-allow-private"
)

// allowHint ends every refusal of a private target: the operator's way
// out, flag.
func allowHint(flag string) string { return " (start tandem with " + flag + " to allow it)" }

// blockedError is CheckAddr's refusal. Send finds it with errors.As below
// the dialer's wrapping.
type blockedError struct {
	addr netip.Addr
	kind string
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("%s is a %s address", e.addr, e.kind)
}

// blockedPrefix is one range refused as a webhook target.
type blockedPrefix struct {
	prefix netip.Prefix
	kind   string
}

// blocked lists the ranges CheckAddr refuses, IPv4 then IPv6. IPv4-mapped
// IPv6 addresses are unmapped before the lookup, so each IPv4 range covers
// its ::ffff: form too.
var blocked = []blockedPrefix{
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified"},
	{netip.MustParsePrefix("0.0.0.0/8"), "reserved (\"this network\")"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.169.254/32"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved (IETF protocol assignments)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved (benchmarking)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "reserved (IPv4-compatible)"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): a gateway translates
// 64:ff9b::a.b.c.d to a.b.c.d, so the embedded IPv4 address is checked.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// CheckAddr reports whether addr may be a webhook target. It returns nil
// for a public unicast address, and otherwise an error whose message names
// the address and why it is refused ("10.0.0.5 is a private address"):
// loopback, private (RFC 1918, fc00::/7), link-local (including the
// 169.254.169.254 metadata endpoint), unspecified, multicast, broadcast,
// carrier-grade NAT and the other reserved ranges, in their IPv4-mapped,
// NAT64 and zoned forms too. An invalid addr is refused as well.
func CheckAddr(addr netip.Addr) error {
	if !addr.IsValid() {
		return fmt.Errorf("%v is not a valid IP address", addr)
	}
	a := addr.WithZone("").Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, p := range blocked {
		if p.prefix.Contains(a) {
			return &blockedError{addr: addr, kind: p.kind}
		}
	}
	return nil
}
