package hub

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestMessage(t *testing.T) {
	data := []byte(`{"type":"event","topic":"channels/a/messages"}`)
	m := NewMessage(data)
	if string(m.Bytes()) != string(data) || m.Size() != len(data) {
		t.Fatalf("Bytes, Size = %q, %d", m.Bytes(), m.Size())
	}
}

func TestMessageFramedOnce(t *testing.T) {
	m := NewMessage([]byte(`{"type":"event"}`))
	const n = 8
	var builds atomic.Int32
	build := func(data []byte) (any, error) {
		builds.Add(1)
		return &struct{ b []byte }{data}, nil
	}
	got := make([]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			f, err := m.Framed(build)
			if err != nil {
				t.Error(err)
			}
			got[i] = f
		})
	}
	wg.Wait()
	if builds.Load() != 1 {
		t.Fatalf("built %d times, want once", builds.Load())
	}
	for i := range got {
		if got[i] == nil || got[i] != got[0] {
			t.Fatalf("Framed #%d returned %v, want the first value %v", i, got[i], got[0])
		}
	}
}

func TestMessageFramedError(t *testing.T) {
	m := NewMessage([]byte(`{}`))
	want := errors.New("cannot frame")
	for range 2 {
		if _, err := m.Framed(func([]byte) (any, error) { return nil, want }); err != want {
			t.Fatalf("Framed error = %v, want %v", err, want)
		}
	}
}

func TestNewEvent(t *testing.T) {
	tests := []struct {
		name        string
		m           *Message
		key, cursor string
		seq         int64
	}{
		{"Event", NewEvent([]byte(`{}`), "channels/a/messages", "c42", 42), "channels/a/messages", "c42", 42},
		{"Plain", NewMessage([]byte(`{}`)), "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.m.Key() != tt.key || tt.m.Cursor() != tt.cursor || tt.m.Seq() != tt.seq {
				t.Fatalf("Key, Cursor, Seq = %q, %q, %d; want %q, %q, %d",
					tt.m.Key(), tt.m.Cursor(), tt.m.Seq(), tt.key, tt.cursor, tt.seq)
			}
			if string(tt.m.Bytes()) != `{}` {
				t.Fatalf("Bytes = %q", tt.m.Bytes())
			}
		})
	}
}
