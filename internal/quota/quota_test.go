package quota

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

func TestCounter(t *testing.T) {
	type step struct {
		acquire string // key to acquire, or ""
		release int    // index of an earlier acquire to release (-1: none)
		ok      bool
	}
	acq := func(key string, ok bool) step { return step{acquire: key, release: -1, ok: ok} }
	rel := func(i int) step { return step{release: i} }
	for _, tc := range []struct {
		name  string
		max   int
		steps []step
		keys  int // keys holding something at the end
	}{
		{"UpToMax", 2, []step{acq("a", true), acq("a", true), acq("a", false)}, 1},
		{"KeysAreIndependent", 1, []step{acq("a", true), acq("b", true), acq("a", false), acq("b", false)}, 2},
		{"ReleaseFreesASlot", 1, []step{acq("a", true), acq("a", false), rel(0), acq("a", true)}, 1},
		{"ReleaseTwiceIsOnce", 2, []step{acq("a", true), acq("a", true), rel(0), rel(0), acq("a", true), acq("a", false)}, 1},
		{"FreedAtZero", 3, []step{acq("a", true), acq("b", true), rel(0), rel(1)}, 0},
		{"Unlimited", 0, []step{acq("a", true), acq("a", true), acq("a", true)}, 0},
		{"Negative", -1, []step{acq("a", true), acq("a", true)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Limit{Name: "max-things", What: "things per key", Max: tc.max})
			releases := map[int]func(){}
			refused := 0
			for i, s := range tc.steps {
				if s.acquire == "" {
					releases[s.release]()
					continue
				}
				r, err := c.Acquire(s.acquire)
				if s.ok != (err == nil) {
					t.Fatalf("step %d: Acquire(%q) = %v, want ok=%v", i, s.acquire, err, s.ok)
				}
				if err != nil {
					refused++
					var qe *Error
					if !errors.As(err, &qe) || qe.Limit.Name != "max-things" || qe.Limit.Max != tc.max {
						t.Fatalf("step %d: error %#v does not carry the limit", i, err)
					}
					continue
				}
				releases[i] = r
			}
			if got := c.Keys(); got != tc.keys {
				t.Fatalf("%d keys held, want %d", got, tc.keys)
			}
			if got := c.Refused(); got != uint64(refused) {
				t.Fatalf("Refused() = %d, want %d", got, refused)
			}
			for _, r := range releases {
				r()
			}
			if c.Keys() != 0 || c.Total() != 0 {
				t.Fatalf("after releasing everything: %d keys, %d held", c.Keys(), c.Total())
			}
		})
	}
}

func TestErrorMapsToCode(t *testing.T) {
	for _, tc := range []struct {
		code, want store.Code
	}{
		{"", store.CodeTooManyRequests},
		{store.CodeUnavailable, store.CodeUnavailable},
	} {
		c := New(Limit{Name: "max-subscriptions", What: "subscriptions on this server", Max: 3, Code: tc.code})
		for range 3 {
			if _, err := c.Acquire(""); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.Acquire("")
		if got := store.ErrorCode(err); got != tc.want {
			t.Fatalf("code %q, want %q", got, tc.want)
		}
		msg := store.ErrorMessage(err)
		if !strings.Contains(msg, "max-subscriptions") || !strings.Contains(msg, "3") {
			t.Fatalf("message %q names neither the limit nor its value", msg)
		}
	}
}

func TestNilCounterAndCaps(t *testing.T) {
	var c *Counter
	for range 3 {
		r, err := c.Acquire("x")
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	var caps *Caps
	if r, err := caps.Conn("1.2.3.4:5"); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
	if r, err := caps.Subscription("ip:1.2.3.4"); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
	if r, err := (&Caps{}).Subscription("ip:1.2.3.4"); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
}

func TestCapsSubscriptionAllOrNothing(t *testing.T) {
	caps := &Caps{
		SubsPerPrincipal: New(Limit{Name: "per-principal", Max: 2}),
		Subs:             New(Limit{Name: "global", Max: 3, Code: store.CodeUnavailable}),
	}
	var rel []func()
	take := func(p string, wantLimit string) {
		t.Helper()
		r, err := caps.Subscription(p)
		if wantLimit == "" {
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			rel = append(rel, r)
			return
		}
		var qe *Error
		if !errors.As(err, &qe) || qe.Limit.Name != wantLimit {
			t.Fatalf("%s: %v, want the %s limit", p, err, wantLimit)
		}
	}
	take("a", "")
	take("a", "")
	take("a", "per-principal")
	take("b", "")
	take("b", "global")
	// The refused global acquire gave b's own slot back.
	if got := caps.SubsPerPrincipal.Held("b"); got != 1 {
		t.Fatalf("b holds %d, want 1", got)
	}
	rel[0]()
	take("b", "")
	for _, r := range rel {
		r()
	}
	if caps.SubsPerPrincipal.Keys() != 0 || caps.Subs.Total() != 0 {
		t.Fatalf("left %d principals, %d subscriptions", caps.SubsPerPrincipal.Keys(), caps.Subs.Total())
	}
}

// TestConcurrent hammers one counter from many goroutines: the count never
// passes the limit, and everything is freed at the end.
func TestConcurrent(t *testing.T) {
	const max, workers, rounds = 5, 16, 500
	c := New(Limit{Name: "max", Max: max})
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holding = map[string]int{}
		over    []string
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				key := fmt.Sprintf("k%d", (w+i)%3)
				r, err := c.Acquire(key)
				if err != nil {
					continue
				}
				mu.Lock()
				holding[key]++
				if holding[key] > max {
					over = append(over, key)
				}
				mu.Unlock()
				if i%2 == 0 {
					_ = c.Held(key)
				}
				mu.Lock()
				holding[key]--
				mu.Unlock()
				r()
				r() // a second release is ignored
			}
		}()
	}
	wg.Wait()
	if len(over) > 0 {
		t.Fatalf("held more than %d: %v", max, over)
	}
	if c.Keys() != 0 || c.Total() != 0 {
		t.Fatalf("after all releases: %d keys, %d held", c.Keys(), c.Total())
	}
}

func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000", "127.0.0.1"},
		{"192.0.2.7:1", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"[::1]:80", "::/64"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"@", "@"},
		{"10.0.0.1", "10.0.0.1"},
	} {
		if got := IPKey(tc.in); got != tc.want {
			t.Errorf("IPKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := ClientKey("jwt:alice", "127.0.0.1:1"); got != "jwt:alice" {
		t.Errorf("ClientKey = %q", got)
	}
	if got := ClientKey("", "127.0.0.1:1"); got != "ip:127.0.0.1" {
		t.Errorf("ClientKey = %q", got)
	}
}
