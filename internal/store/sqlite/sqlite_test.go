package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storetest"
)

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunWithReopen(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "tandem.db")
		return func(t *testing.T) store.Store { return openAt(t, path) }
	})
}

func TestWAL(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "t.db"))
	ctx := context.Background()
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
	for _, db := range []struct {
		name string
		q    func(string) (int, error)
	}{
		{"writer", func(p string) (n int, err error) { return n, s.w.QueryRowContext(ctx, "PRAGMA "+p).Scan(&n) }},
		{"reader", func(p string) (n int, err error) { return n, s.r.QueryRowContext(ctx, "PRAGMA "+p).Scan(&n) }},
	} {
		if fk, err := db.q("foreign_keys"); err != nil || fk != 1 {
			t.Errorf("%s foreign_keys = %d, %v; want 1", db.name, fk, err)
		}
		if bt, err := db.q("busy_timeout"); err != nil || bt != 5000 {
			t.Errorf("%s busy_timeout = %d, %v; want 5000", db.name, bt, err)
		}
	}
	if _, err := s.r.ExecContext(ctx, "DELETE FROM changes"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	ms, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil || len(ms) == 0 {
		t.Fatalf("LoadMigrations = %d, %v", len(ms), err)
	}
	var epoch string
	for i := range 3 {
		s := openAt(t, path)
		if i == 0 {
			epoch = s.Epoch()
		} else if s.Epoch() != epoch {
			t.Fatalf("epoch changed on reopen %d", i)
		}
		var n, maxV int
		if err := s.r.QueryRow("SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || maxV != ms[len(ms)-1].Version {
			t.Fatalf("open %d: %d migrations recorded up to %d, want %d up to %d", i, n, maxV, len(ms), ms[len(ms)-1].Version)
		}
		var metaRows int
		if err := s.r.QueryRow("SELECT count(*) FROM meta").Scan(&metaRows); err != nil || metaRows != 1 {
			t.Fatalf("meta rows = %d, %v", metaRows, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := Open(context.Background(), p, Options{}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", p, err)
		}
	}
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing-dir", "x.db"), Options{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open in a missing directory = %v, want ErrUnavailable", err)
	}
	if msg := store.ErrorMessage(err); strings.Contains(msg, "sqlite") || strings.Contains(msg, "SQL") {
		t.Fatalf("client-facing message leaks internals: %q", msg)
	}
}

func TestClosedStoreUnavailable(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "t.db"))
	s.Close()
	_, err := s.Revision(context.Background())
	if !errors.Is(err, store.ErrUnavailable) || store.ErrorMessage(err) != store.ErrUnavailable.Message {
		t.Fatalf("Revision after Close = %v (message %q), want ErrUnavailable", err, store.ErrorMessage(err))
	}
}

// benchStore opens a store with a "bench" collection and returns a
// resource with the benchmarks' data and labels for a given ID.
func benchStore(b *testing.B) (*Store, func(id string) store.Resource) {
	s := openAt(b, filepath.Join(b.TempDir(), "bench.db"))
	if _, err := s.CreateCollection(context.Background(), store.Collection{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	data := json.RawMessage(`{"title":"benchmark","done":false,"n":42}`)
	labels := map[string]string{"env": "bench"}
	return s, func(id string) store.Resource {
		return store.Resource{Collection: "bench", ID: id, Data: data, Labels: labels}
	}
}

func BenchmarkPutResource(b *testing.B) {
	s, res := benchStore(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, _, err := s.PutResource(ctx, res(fmt.Sprint("r", i%1000)), store.Precondition{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPutResourceParallel is BenchmarkPutResource from 64 goroutines:
// the writes queue up behind each commit and share the next one.
func BenchmarkPutResourceParallel(b *testing.B) {
	s, res := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	commits := s.commits.Load()
	b.SetParallelism(32) // × GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint("r", n.Add(1)%1000)
			if _, _, err := s.PutResource(ctx, res(id), store.Precondition{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(s.commits.Load()-commits), "writes/commit")
}

// TestGroupCommit runs many concurrent writes, a third of which fail their
// precondition, and checks what group commit must keep: every write that
// succeeded is stored with its own revision, the revisions of the group are
// contiguous and each has one change-log entry, the failed writes left no
// trace (no revision, no change, no row), and writes did share commits.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "tandem.db"))
	if _, err := s.CreateCollection(ctx, store.Collection{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutResource(ctx, store.Resource{Collection: "c", ID: "taken"}, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	base, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commitsBefore := s.commits.Load()
	const writers, each = 48, 20
	type result struct {
		id  string
		rev int64
		err error
	}
	results := make(chan result, writers*each)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				cond := store.Precondition{}
				if (w+i)%3 == 0 {
					id, cond = "taken", store.Precondition{CreateOnly: true}
				}
				r, _, err := s.PutResource(ctx, store.Resource{Collection: "c", ID: id,
					Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))}, cond)
				results <- result{id, r.Revision, err}
			}
		}()
	}
	for range writers {
		<-done
	}
	close(results)
	revs := map[int64]string{}
	failed := 0
	for r := range results {
		if r.id == "taken" {
			if !errors.Is(r.err, store.ErrPreconditionFailed) {
				t.Fatalf("create-only write of an existing resource: %v, want ErrPreconditionFailed", r.err)
			}
			failed++
			continue
		}
		if r.err != nil {
			t.Fatalf("write %s: %v", r.id, r.err)
		}
		if other, dup := revs[r.rev]; dup {
			t.Fatalf("revision %d given to %s and %s", r.rev, other, r.id)
		}
		revs[r.rev] = r.id
	}
	ok := writers*each - failed
	if failed == 0 || len(revs) != ok {
		t.Fatalf("%d failed, %d distinct revisions for %d successes", failed, len(revs), ok)
	}
	last, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last != base+int64(ok) {
		t.Fatalf("revision moved %d → %d for %d successful writes: failed writes took revisions", base, last, ok)
	}
	changes, err := s.Changes(ctx, base, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != ok {
		t.Fatalf("%d change-log entries for %d successful writes", len(changes), ok)
	}
	for i, c := range changes {
		if c.Revision != base+int64(i)+1 || revs[c.Revision] != c.Resource.ID {
			t.Fatalf("change %d: revision %d for %s, want %d for %s", i, c.Revision, c.Resource.ID, base+int64(i)+1, revs[c.Revision])
		}
		got, err := s.GetResource(ctx, "c", c.Resource.ID)
		if err != nil || got.Revision != c.Revision {
			t.Fatalf("GetResource(%s) = rev %d, %v; want rev %d", c.Resource.ID, got.Revision, err, c.Revision)
		}
	}
	taken, err := s.GetResource(ctx, "c", "taken")
	if err != nil || taken.Revision != base {
		t.Fatalf("the resource the failed writes targeted: rev %d, %v; want it untouched at %d", taken.Revision, err, base)
	}
	if commits := s.commits.Load() - commitsBefore; commits >= int64(ok) {
		t.Fatalf("%d commits for %d writes from %d concurrent writers: no write shared a commit", commits, ok, writers)
	} else {
		t.Logf("%d writes in %d commits", ok, commits)
	}
}

// TestWriteCancelled checks that a write whose context is already done
// reports the context's error and writes nothing, whether or not the writer
// took it.
func TestWriteCancelled(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "tandem.db"))
	if _, err := s.CreateCollection(ctx, store.Collection{Name: "c"}); err != nil {
		t.Fatal(err)
	}
	base, _ := s.Revision(ctx)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for i := range 20 {
		_, _, err := s.PutResource(cctx, store.Resource{Collection: "c", ID: fmt.Sprint(i)}, store.Precondition{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("write %d with a cancelled context: %v, want context.Canceled", i, err)
		}
	}
	if rev, _ := s.Revision(ctx); rev != base {
		t.Fatalf("revision moved %d → %d after cancelled writes", base, rev)
	}
}
