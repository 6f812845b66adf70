package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPresenceLeasesRenewed: the server's one renewer keeps every joined
// connection's lease alive across many lease lengths, whichever renewal
// group it joined, and stops renewing a connection once it ended, so its
// leave is never undone by a late renewal.
func TestPresenceLeasesRenewed(t *testing.T) {
	const ttl = 1500 * time.Millisecond // renewed every 500 ms, one group per 31 ms
	s := startServer(t, "--presence-ttl", ttl.String())
	room := "chat:renewed"
	const members = 40
	conns := make([]*wsClient, members)
	for i := range conns {
		conns[i] = s.dial(t)
		conns[i].subscribe("channels/"+room+"/messages", map[string]any{"meta": map[string]any{"n": i}})
	}
	present := func() int {
		t.Helper()
		pr, err := s.Client.ChannelPresenceWithResponse(context.Background(), room, nil)
		if err != nil || pr.StatusCode() != 200 {
			t.Fatalf("presence: %v %v", err, pr)
		}
		n := 0
		for _, m := range pr.JSON200.Members {
			n += len(m.Connections)
		}
		return n
	}
	// waitPresent waits until n connections are present.
	waitPresent := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := present(); got != n; got = present() {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections present, want %d", got, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// holds checks that n connections stay present for four lease lengths:
	// without renewal every lease would have expired (the sweeper runs
	// every second).
	holds := func(n int) {
		t.Helper()
		for end := time.Now().Add(4 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if got := present(); got != n {
				t.Fatalf("%d connections present while %d hold their leases", got, n)
			}
		}
	}
	waitPresent(members)
	holds(members)
	for _, c := range conns[:members/2] {
		if err := c.c.Close(); err != nil {
			t.Fatal(fmt.Errorf("close: %w", err))
		}
	}
	waitPresent(members / 2)
	holds(members / 2)
}
