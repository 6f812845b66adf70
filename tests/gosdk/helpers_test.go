// Helpers the SDK's tests share: contexts, connecting, taking the next
// event, waiting for a condition, describing events, recording states.

package gosdk_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// wait is how long a test waits for something that should happen; it
// bounds hangs, it is not a speed assertion.
const wait = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, c *tandem.Client) *tandem.Conn {
	t.Helper()
	conn, err := c.Connect(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// next returns the next event of sub or fails after wait.
func next(t *testing.T, sub *tandem.Subscription) tandem.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
		return tandem.Event{}
	}
}

// eventually polls cond until it holds or fails after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func put(t *testing.T, c *tandem.Client, coll, id string, data any) *client.Resource {
	t.Helper()
	r, err := c.Put(testContext(t), coll, id, data, nil)
	if err != nil {
		t.Fatalf("put %s/%s: %v", coll, id, err)
	}
	return r
}

func describe(ev tandem.Event) string {
	switch ev.Type {
	case tandem.TypeEvent:
		if ev.Resource != nil {
			return ev.Event + " " + ev.Resource.Id + " " + string(ev.Resource.Data)
		}
		return ev.Event + " " + string(ev.Message.Data)
	case tandem.TypePresence:
		ids := []string{}
		for _, m := range ev.Members {
			ids = append(ids, m.Id)
		}
		return fmt.Sprintf("presence %s %v", ev.Action, ids)
	}
	return ev.Type
}

// statusLog records a client's connection states.
type statusLog struct {
	mu     sync.Mutex
	states []tandem.Status
}

func (l *statusLog) record(s tandem.Status) {
	l.mu.Lock()
	l.states = append(l.states, s)
	l.mu.Unlock()
}

func (l *statusLog) count(st tandem.State) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.states {
		if s.State == st {
			n++
		}
	}
	return n
}
