package webhook

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr string
		kind string // "" allowed
	}{
		{"93.184.215.14", ""},
		{"8.8.8.8", ""},
		{"2606:4700::1111", ""},
		{"172.32.0.1", ""},  // just past 172.16/12
		{"100.128.0.1", ""}, // just past 100.64/10
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this network"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"192.0.0.8", "IETF"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.5", "private"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:93.184.215.14", ""},
		{"64:ff9b::7f00:1", "loopback"}, // NAT64 of 127.0.0.1
		{"64:ff9b::5db8:d70e", ""},      // NAT64 of 93.184.215.14
		{"::127.0.0.1", "IPv4-compatible"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(tt.addr))
			switch {
			case tt.kind == "" && err != nil:
				t.Fatalf("CheckAddr(%s) = %v, want nil", tt.addr, err)
			case tt.kind != "" && err == nil:
				t.Fatalf("CheckAddr(%s) = nil, want a %s refusal", tt.addr, tt.kind)
			case tt.kind != "" && !strings.Contains(err.Error(), tt.kind):
				t.Fatalf("CheckAddr(%s) = %q, want it to mention %q", tt.addr, err, tt.kind)
			}
		})
	}
	if err := CheckAddr(netip.Addr{}); err == nil {
		t.Error("CheckAddr(zero Addr) = nil, want an error")
	}
}
