// Helpers the conformance cases share.

package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func wantCode(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v (code %q), want %v (code %q)", err, store.ErrorCode(err), target, store.ErrorCode(target))
	}
}

func (e *env) ok(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("unexpected error: %v", err)
	}
}

func (e *env) coll(name string) store.Collection {
	e.t.Helper()
	c, err := e.s.CreateCollection(e.ctx, store.Collection{Name: name})
	e.ok(err)
	return c
}

func (e *env) put(coll, id, data string, labels map[string]string) store.Resource {
	e.t.Helper()
	r, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: coll, ID: id, Data: json.RawMessage(data), Labels: labels}, store.Precondition{})
	e.ok(err)
	return r
}

func (e *env) rev() int64 {
	e.t.Helper()
	r, err := e.s.Revision(e.ctx)
	e.ok(err)
	return r
}

func (e *env) changes(after int64, limit int) []store.Change {
	e.t.Helper()
	cs, err := e.s.Changes(e.ctx, after, limit)
	e.ok(err)
	return cs
}

func (e *env) wantRev(want int64) {
	e.t.Helper()
	if got := e.rev(); got != want {
		e.t.Fatalf("Revision() = %d, want %d", got, want)
	}
}

// jsonEqual compares two JSON documents semantically.
func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("data %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("data = %s, want %s", got, want)
	}
}

func labelsEqual(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		if (got == nil) != (want == nil) {
			t.Fatalf("%s = %#v, want %#v", what, got, want)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func checkTime(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Fatalf("%s location = %v, want UTC", what, got.Location())
	}
	if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
		t.Fatalf("%s = %v, want between %v and %v", what, got, before, after)
	}
	back, err := time.Parse(time.RFC3339Nano, got.Format(time.RFC3339Nano))
	if err != nil || !back.Equal(got) || back != got {
		t.Fatalf("%s = %v does not round-trip through RFC 3339 (%v, %v)", what, got, back, err)
	}
}

func ids(rs []store.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func (e *env) drainNotify() {
	for {
		select {
		case <-e.s.Notify():
		default:
			return
		}
	}
}

func (e *env) waitNotify(d time.Duration) bool {
	select {
	case <-e.s.Notify():
		return true
	case <-time.After(d):
		return false
	}
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var epochRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// concurrently runs f(0) … f(n-1) at once and returns their errors by i.
func concurrently(n int, f func(i int) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errs
}
