// Conformance cases for concurrent writers and precondition races.

package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func concurrencyCases() []testCase {
	return []testCase{
		// Concurrency
		{"Concurrency", "Writers", func(e *env) {
			const writers, perWriter = 8, 50
			e.coll("a")
			e.coll("b")
			base := e.rev()
			var mu sync.Mutex
			revs := map[int64]string{}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					coll := []string{"a", "b"}[w%2]
					for i := range perWriter {
						id := fmt.Sprintf("w%d-%d", w, i%10)
						r, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: coll, ID: id,
							Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}, store.Precondition{})
						if err != nil {
							e.t.Errorf("writer %d: %v", w, err)
							return
						}
						mu.Lock()
						if prev, dup := revs[r.Revision]; dup {
							e.t.Errorf("revision %d returned twice (%s and %s)", r.Revision, prev, id)
						}
						revs[r.Revision] = coll + "/" + id
						mu.Unlock()
					}
				}()
			}
			// a concurrent reader must never observe a gap
			stop := make(chan struct{})
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				after := base
				for {
					cs, err := e.s.Changes(e.ctx, after, 37)
					if err != nil {
						e.t.Errorf("reader: %v", err)
						return
					}
					for _, c := range cs {
						if c.Revision != after+1 {
							e.t.Errorf("reader saw revision %d after %d", c.Revision, after)
							return
						}
						after = c.Revision
					}
					select {
					case <-stop:
						if len(cs) == 0 {
							return // every write has committed and been read
						}
					default:
						if len(cs) == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}
			}()
			wg.Wait()
			close(stop)
			<-readerDone
			if e.t.Failed() {
				return
			}
			total := int64(writers * perWriter)
			e.wantRev(base + total)
			cs := e.changes(base, int(total)+10)
			if int64(len(cs)) != total {
				e.t.Fatalf("%d changes, want %d", len(cs), total)
			}
			for i, c := range cs {
				want := base + 1 + int64(i)
				if c.Revision != want {
					e.t.Fatalf("change %d has revision %d, want %d (gap or disorder)", i, c.Revision, want)
				}
				if got := c.Resource.Collection + "/" + c.Resource.ID; revs[c.Revision] != got {
					e.t.Fatalf("change at %d is %s, but that revision was returned for %s", c.Revision, got, revs[c.Revision])
				}
			}
			// every resource's revision is its last change's revision
			last := map[string]int64{}
			for _, c := range cs {
				last[c.Resource.Collection+"/"+c.Resource.ID] = c.Revision
			}
			keys := make([]string, 0, len(last))
			for k := range last {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				coll, id, _ := strings.Cut(k, "/")
				r, err := e.s.GetResource(e.ctx, coll, id)
				e.ok(err)
				if r.Revision != last[k] {
					e.t.Fatalf("%s at revision %d, want %d", k, r.Revision, last[k])
				}
			}
		}},
		{"Concurrency", "PreconditionRace", func(e *env) {
			e.coll("a")
			r := e.put("a", "r", `{}`, nil)
			const n = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, fails := 0, 0
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{IfMatch: r.Revision})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, store.ErrPreconditionFailed):
						fails++
					default:
						e.t.Errorf("unexpected error %v", err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 || fails != n-1 {
				e.t.Fatalf("%d writers won and %d failed, want 1 and %d", wins, fails, n-1)
			}
		}},
	}
}
