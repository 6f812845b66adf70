package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startTandem builds and runs `tandem serve` on a loopback port and
// returns its URL.
func startTandem(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tandem")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tandemhq/tandem/cmd/tandem").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--strict")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	re := regexp.MustCompile(`msg="tandem listening" addr=(\S+)`)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, stderr) }()
			return "http://" + m[1]
		}
	}
	t.Fatal("tandem serve did not start")
	return ""
}

type chatter struct {
	in   *io.PipeWriter
	out  *syncBuffer
	done chan error
}

func startChat(t *testing.T, url, name string) *chatter {
	t.Helper()
	pr, pw := io.Pipe()
	c := &chatter{in: pw, out: &syncBuffer{}, done: make(chan error, 1)}
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
