package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/storetest"
)

const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	reachOnce sync.Once
	reachErr  error
)

// adminDSN is the database used to create and drop the per-test databases.
func adminDSN() string {
	if v := os.Getenv("TANDEM_TEST_POSTGRES"); v != "" {
		return v
	}
	return defaultTestDSN
}

// redacted hides a password in dsn for messages.
func redacted(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "the configured DSN"
}

// requirePostgres skips the test (fails it when $CI is set) when PostgreSQL
// is not reachable.
func requirePostgres(t testing.TB) {
	t.Helper()
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminDSN())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		reachErr = err
	})
	if reachErr == nil {
		t.Logf("using PostgreSQL at %s", redacted(adminDSN()))
		return
	}
	msg := fmt.Sprintf("PostgreSQL not reachable at %s (%v); start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, or point TANDEM_TEST_POSTGRES at a server", redacted(adminDSN()), reachErr)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newDatabase creates a fresh database, dropped when the test ends, and
// returns its DSN.
func newDatabase(t testing.TB) string {
	t.Helper()
	requirePostgres(t)
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	name := "tandem_test_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, adminDSN())
	if err != nil {
		t.Fatalf("connect to %s: %v", redacted(adminDSN()), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, adminDSN())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return dsnWithDatabase(t, adminDSN(), name)
}

func dsnWithDatabase(t testing.TB, dsn, db string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse TANDEM_TEST_POSTGRES: %v", err)
		}
		u.Path = "/" + db
		return u.String()
	}
	return dsn + " dbname=" + db
}

func openDSN(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunWithReopen(t, func(t *testing.T) storetest.Opener {
		dsn := newDatabase(t)
		return func(t *testing.T) store.Store { return openDSN(t, dsn, Options{}) }
	})
}

func TestMigrationsIdempotent(t *testing.T) {
	dsn := newDatabase(t)
	ms, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil || len(ms) == 0 {
		t.Fatalf("LoadMigrations = %d, %v", len(ms), err)
	}
	// concurrent first opens must not race on the migrations or the epoch
	stores := make([]*Store, 3)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			stores[i] = s
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range stores {
		defer s.Close()
		if s.Epoch() != stores[0].Epoch() {
			t.Fatalf("epochs differ: %s, %s", s.Epoch(), stores[0].Epoch())
		}
	}
	var n, maxV int
	if err := stores[0].pool.QueryRow(context.Background(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || maxV != ms[len(ms)-1].Version {
		t.Fatalf("%d migrations recorded up to %d, want %d up to %d", n, maxV, len(ms), ms[len(ms)-1].Version)
	}
}

func TestNotifyAcrossStores(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	writer := openDSN(t, dsn, Options{})
	// A long poll interval proves the wake-up comes from LISTEN/NOTIFY.
	watcher := openDSN(t, dsn, Options{PollInterval: time.Hour})
	if _, err := writer.CreateCollection(ctx, store.Collection{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	// Wait for the listener's initial wake-up, then drain.
	select {
	case <-watcher.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("listener never connected")
	}
	time.Sleep(100 * time.Millisecond)
	for len(watcher.Notify()) > 0 {
		<-watcher.Notify()
	}
	r, _, err := writer.PutResource(ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-watcher.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("the other store was not notified")
	}
	cs, err := watcher.Changes(ctx, r.Revision-1, 0)
	if err != nil || len(cs) != 1 || cs[0].Revision != r.Revision {
		t.Fatalf("Changes = %+v, %v", cs, err)
	}
}

func TestNotifyPollFallback(t *testing.T) {
	dsn := newDatabase(t)
	ctx := context.Background()
	s := openDSN(t, dsn, Options{PollInterval: 50 * time.Millisecond})
	if _, err := s.CreateCollection(ctx, store.Collection{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	for len(s.Notify()) > 0 {
		<-s.Notify()
	}
	// A write that bypasses NOTIFY (as if the notification were lost).
	if _, err := s.pool.Exec(ctx, `UPDATE meta SET revision = revision + 1`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("the poll did not notice the new revision")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(context.Background(), "postgres://%zz", Options{}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("malformed DSN: %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", Options{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("unreachable server: %v, want ErrUnavailable", err)
	}
	if msg := store.ErrorMessage(err); strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("client-facing message leaks internals: %q", msg)
	}
}

func TestClosedStoreUnavailable(t *testing.T) {
	s := openDSN(t, newDatabase(t), Options{})
	s.Close()
	s.Close()
	_, err := s.Revision(context.Background())
	if !errors.Is(err, store.ErrUnavailable) || store.ErrorMessage(err) != store.ErrUnavailable.Message {
		t.Fatalf("Revision after Close = %v (message %q), want ErrUnavailable", err, store.ErrorMessage(err))
	}
}

func BenchmarkPutResource(b *testing.B) {
	s := openDSN(b, newDatabase(b), Options{})
	ctx := context.Background()
	if _, err := s.CreateCollection(ctx, store.Collection{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	data := json.RawMessage(`{"title":"benchmark","done":false,"n":42}`)
	labels := map[string]string{"env": "bench"}
	i := 0
	for b.Loop() {
		if _, _, err := s.PutResource(ctx, store.Resource{Collection: "bench", ID: fmt.Sprint("r", i%1000), Data: data, Labels: labels}, store.Precondition{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
