package main

import (
	"net/netip"
	"strings"
	"testing"
)

// A port alone is served on loopback and the node's VPC address, never on
// every address; an explicit host is taken as it is.
func TestListenAddrs(t *testing.T) {
	vpc := netip.MustParseAddr("198.51.100.10")
	for addr, want := range map[string]string{
		"0":            "",
		"":             "",
		":9402":        "127.0.0.1:9402 198.51.100.10:9402",
		"0.0.0.0:9402": "0.0.0.0:9402",
		"[::1]:9403":   "[::1]:9403",
	} {
		got, err := listenAddrs(addr, vpc)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: %v %v, want %s", addr, got, err, want)
		}
	}
	if got, _ := listenAddrs(":9403", netip.Addr{}); strings.Join(got, " ") != "127.0.0.1:9403" {
		t.Errorf("no VPC address known: %v, want loopback only", got)
	}
	if _, err := listenAddrs("9402", vpc); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("a port without its colon: %v, want an error saying the form", err)
	}
}
