// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's tests call Run (or
// RunWithReopen) with a function that opens a Store on a fresh database.
package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Opener opens a Store on one particular database; each call opens another
// Store on the same data. It must arrange for the Store to be closed when
// the test ends (t.Cleanup); the suite may also close a Store itself, so
// Close must tolerate a second call.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite. open must return a Store on a fresh,
// empty database and arrange for it to be closed when t ends. The subtests
// that reopen a database are skipped; use RunWithReopen to include them.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	run(t, open, nil)
}

// RunWithReopen runs the whole suite, including the subtests that open the
// same database twice (epoch stability, durability). newDB must create a
// fresh, empty database and return an Opener for it.
func RunWithReopen(t *testing.T, newDB func(t *testing.T) Opener) {
	run(t, func(t *testing.T) store.Store { return newDB(t)(t) }, newDB)
}

// env is what one subtest works with.
type env struct {
	t     *testing.T
	ctx   context.Context
	s     store.Store
	open  func(t *testing.T) store.Store
	newDB func(t *testing.T) Opener
}

type testCase struct {
	group, name string
	fn          func(e *env)
}

func run(t *testing.T, open func(t *testing.T) store.Store, newDB func(t *testing.T) Opener) {
	groups := map[string][]testCase{}
	var order []string
	for _, tc := range cases() {
		if _, ok := groups[tc.group]; !ok {
			order = append(order, tc.group)
		}
		groups[tc.group] = append(groups[tc.group], tc)
	}
	for _, g := range order {
		t.Run(g, func(t *testing.T) {
			for _, tc := range groups[g] {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					e := &env{t: t, ctx: ctx, open: open, newDB: newDB}
					if !strings.HasPrefix(tc.group, "Reopen") {
						e.s = open(t)
					}
					tc.fn(e)
				})
			}
		})
	}
}

func cases() []testCase {
	return slices.Concat(
		lifecycleCases(),
		collectionCases(),
		collectionUpdateCases(),
		resourceCases(),
		changeLogCases(),
		idempotentReplyCases(),
		webhookCases(),
		notifyCases(),
		concurrencyCases(),
		queryCases(),
		indexUpdateCases(),
		batchCases(),
	)
}
