package gosdk_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

const jwtSecret = "go-sdk-test-secret-0123456789abcdef"

// mint returns a dev JWT for alice from `tandem token`.
func mint(t *testing.T, ttl string) string {
	t.Helper()
	out, err := exec.Command(tandemBin, "token", "--secret", jwtSecret, "--sub", "alice",
		"--grant", "read:** write:** admin:** publish:channels/**", "--ttl", ttl).Output()
	if err != nil {
		t.Fatalf("tandem token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestAuth(t *testing.T) {
	srv := StartServer(t, "--jwt-secret", jwtSecret)
	ctx := testContext(t)

	t.Run("TokenSourceRefreshesInBand", func(t *testing.T) {
		var minted atomic.Int32
		// Tokens live 2 s: the connection outlives several of them only if
		// the SDK refreshes in-band (the server closes with 4001 otherwise).
		src := func(context.Context) (string, error) { minted.Add(1); return mint(t, "2s"), nil }
		status := &statusLog{}
		c := newClient(t, srv.URL, tandem.WithTokenSource(src), tandem.WithStatus(status.record))
		if err := c.EnsureCollection(ctx, "private"); err != nil {
			t.Fatal(err)
		}
		conn := connect(t, c)
		sub, err := conn.Subscribe(ctx, tandem.CollectionTopic("private"), &tandem.SubscribeOptions{Snapshot: true})
		if err != nil {
			t.Fatal(err)
		}
		if ev := next(t, sub); ev.Type != tandem.TypeSynced {
			t.Fatalf("got %s", describe(ev))
		}
		res, err := conn.Authenticate(ctx)
		if err != nil || res.Subject != "alice" || res.ExpiresAt == "" {
			t.Fatalf("Authenticate = %+v, %v", res, err)
		}
		before := minted.Load()
		eventually(t, "two in-band refreshes", func() bool { return minted.Load() >= before+2 })
		put(t, c, "private", "p", map[string]int{"n": 1})
		if ev := next(t, sub); describe(ev) != `resource.created p {"n":1}` {
			t.Fatalf("got %s", describe(ev))
		}
		if n := status.count(tandem.StateConnected); n != 1 {
			t.Fatalf("connected %d times; refresh must not reconnect: %+v", n, status.states)
		}
	})

	t.Run("StaticTokenExpiryEndsTheConn", func(t *testing.T) {
		c := newClient(t, srv.URL, tandem.WithToken(mint(t, "1s")))
		conn := connect(t, c)
		select {
		case <-conn.Done():
		case <-time.After(wait):
			t.Fatal("the connection outlived its token")
		}
		var ce *websocket.CloseError
		if !errors.As(conn.Err(), &ce) || ce.Code != tandem.CloseAuthExpired {
			t.Fatalf("Err = %v, want close 4001", conn.Err())
		}
	})

	t.Run("Anonymous", func(t *testing.T) {
		c := newClient(t, srv.URL)
		if _, err := c.Get(ctx, "private", "p"); !errors.Is(err, tandem.ErrUnauthorized) {
			t.Fatalf("REST without a token: %v", err)
		}
		conn := connect(t, c)
		_, err := conn.Subscribe(ctx, tandem.CollectionTopic("private"), nil)
		if !errors.Is(err, tandem.ErrUnauthorized) && !errors.Is(err, tandem.ErrForbidden) {
			t.Fatalf("subscribe without a token: %v", err)
		}
	})
}
