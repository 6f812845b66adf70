package main

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/sdk/go/internal/servertest"
)

// startTandem builds and runs `tandem serve` on a loopback port and
// returns its URL; outside the repository it skips the test (fails under CI).
func startTandem(t *testing.T) string {
	t.Helper()
	bin, err := servertest.Build(context.Background(), t.TempDir())
	if errors.Is(err, servertest.ErrNoRepository) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := servertest.Start(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv.URL
}

type chatter struct {
	in   *io.PipeWriter
	out  *servertest.SyncBuffer
	done chan error
}

func startChat(t *testing.T, url, name string) *chatter {
	t.Helper()
	pr, pw := io.Pipe()
	c := &chatter{in: pw, out: &servertest.SyncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); pw.Close(); <-c.done })
	getenv := func(string) string { return "" }
	go func() {
		c.done <- run(ctx, []string{"-url", url, "-room", "test", "-name", name}, getenv, pr, c.out, io.Discard)
	}()
	return c
}

func (c *chatter) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q:\n%s", text, c.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTwoPeopleChat(t *testing.T) {
	url := startTandem(t)
	alice := startChat(t, url, "alice")
	alice.waitFor(t, "* alice joined")
	bob := startChat(t, url, "bob")
	bob.waitFor(t, "* here: alice")
	bob.waitFor(t, "* bob joined")
	alice.waitFor(t, "* bob joined")

	if _, err := io.WriteString(alice.in, "hello bob\n"); err != nil {
		t.Fatal(err)
	}
	bob.waitFor(t, "alice: hello bob")
	alice.waitFor(t, "alice: hello bob")

	// alice leaves (end of input); bob sees it, and a newcomer gets the
	// history.
	alice.in.Close()
	if err := <-alice.done; err != nil {
		t.Fatal(err)
	}
	alice.done <- nil // for the cleanup
	bob.waitFor(t, "* alice left")
	carol := startChat(t, url, "carol")
	carol.waitFor(t, "alice: hello bob")
}
