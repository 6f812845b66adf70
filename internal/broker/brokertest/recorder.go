// Package brokertest is the conformance suite every broker.Broker must
// pass: run it from each implementation's tests with Run.
package brokertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

// Wait is how long the suite waits for an asynchronous delivery.
const Wait = 5 * time.Second

// Recorder is a broker.Handler that records every call and checks the
// Handler contract: calls for one channel never overlap, and messages of
// one channel arrive with offsets increasing by exactly one (a reset starts
// a new sequence).
type Recorder struct {
	mu       sync.Mutex
	msgs     map[string][]broker.Message
	pres     map[string][]broker.PresenceEvent
	resets   map[string][]string
	last     map[string]broker.Position
	busy     map[string]*atomic.Int32
	problems []string
}

var _ broker.Handler = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		msgs:   map[string][]broker.Message{},
		pres:   map[string][]broker.PresenceEvent{},
		resets: map[string][]string{},
		last:   map[string]broker.Position{},
		busy:   map[string]*atomic.Int32{},
	}
}

func (r *Recorder) enter(ch string) func() {
	r.mu.Lock()
	b := r.busy[ch]
	if b == nil {
		b = new(atomic.Int32)
		r.busy[ch] = b
	}
	r.mu.Unlock()
	if b.Add(1) != 1 {
		r.problem("concurrent handler calls for channel %q", ch)
	}
	time.Sleep(0) // widen the window for overlapping calls
	return func() { b.Add(-1) }
}

func (r *Recorder) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// HandleMessage records m.
func (r *Recorder) HandleMessage(m broker.Message) {
	defer r.enter(m.Channel)()
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.last[m.Channel]; ok && last.Epoch == m.Epoch && m.Offset != last.Offset+1 {
		r.problems = append(r.problems, fmt.Sprintf("channel %q: offset %d after %d", m.Channel, m.Offset, last.Offset))
	}
	r.last[m.Channel] = broker.Position{Epoch: m.Epoch, Offset: m.Offset}
	r.msgs[m.Channel] = append(r.msgs[m.Channel], m)
}

// HandlePresence records e.
func (r *Recorder) HandlePresence(e broker.PresenceEvent) {
	defer r.enter(e.Channel)()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pres[e.Channel] = append(r.pres[e.Channel], e)
}

// HandleReset records the reset and forgets the channel's last offset.
func (r *Recorder) HandleReset(channel, epoch string) {
	defer r.enter(channel)()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, channel)
	r.resets[channel] = append(r.resets[channel], epoch)
}

// Forget ends the channel's offset sequence: call it after Unsubscribe,
// since messages published meanwhile are rightly not delivered.
func (r *Recorder) Forget(channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, channel)
}

// Messages returns the messages delivered for channel so far.
func (r *Recorder) Messages(channel string) []broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.Message(nil), r.msgs[channel]...)
}

// Presence returns the presence events delivered for channel so far.
func (r *Recorder) Presence(channel string) []broker.PresenceEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]broker.PresenceEvent(nil), r.pres[channel]...)
}

// Resets returns the epochs of the resets delivered for channel so far.
func (r *Recorder) Resets(channel string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.resets[channel]...)
}

// Problems returns the contract violations seen so far.
func (r *Recorder) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.problems...)
}

// Start runs b with a new Recorder until the test ends, then checks the
// Recorder saw no contract violation and closes b.
func Start(t testing.TB, b broker.Broker) *Recorder {
	t.Helper()
	r := NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, r) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(Wait):
			t.Errorf("Run did not return %v after its context ended", Wait)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, p := range r.Problems() {
			t.Errorf("handler contract: %s", p)
		}
	})
	return r
}

// Eventually polls cond until it holds or Wait passes, then fails t with
// the message.
func Eventually(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	EventuallyWithin(t, Wait, cond, format, args...)
}

// EventuallyWithin is Eventually with its own bound d, for what takes
// longer than one delivery (a Redis restart).
func EventuallyWithin(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{d}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
