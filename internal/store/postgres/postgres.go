// Package postgres implements store.Store on PostgreSQL with pgx v5.
//
// Every write transaction first updates the single row of the meta table
// (the revision counter); that row lock serialises writers, so commit order
// equals revision order and a reader never sees revision n+1 without n. The
// transaction ends with NOTIFY tandem_changes (delivered at commit), which
// wakes the Notify channel of every Store on the database, on every node.
package postgres

import (
	"context"
	"embed"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tandemhq/tandem/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ store.Store = (*Store)(nil)

// notifyChannel is the LISTEN/NOTIFY channel that announces commits.
const notifyChannel = "tandem_changes"

// migrationLock is the pg_advisory_lock key held while migrating, so that
// nodes starting together do not race.
const migrationLock = 0x74616e64656d // "tandem"

// Options configures Open. The zero value is ready to use.
type Options struct {
	// MaxConns caps the connection pool (the listener uses one more
	// connection); 0 keeps pgxpool's default or the DSN's pool_max_conns.
	MaxConns int32
	// PollInterval is how often the listener checks the revision in case a
	// notification was missed; 0 means 1s.
	PollInterval time.Duration
}

// Store is a store.Store backed by a PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	epoch  string
	notify chan struct{}
	poll   time.Duration

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value connection string), applies any pending migrations and starts
// the change listener. A database initialised by Open gets a new random
// epoch. Errors: store.ErrInvalid for a malformed DSN or options, otherwise
// an error that matches store.ErrUnavailable and wraps the driver's error.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, store.Errorf(store.CodeInvalid, "postgres store: malformed connection string")
	}
	if opts.MaxConns < 0 || opts.PollInterval < 0 {
		return nil, store.Errorf(store.CodeInvalid, "postgres store: negative option")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrapErr(ctx, "connect", err)
	}
	s := &Store{pool: pool, notify: make(chan struct{}, 1), poll: opts.PollInterval, done: make(chan struct{})}
	if err := s.init(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.listen(lctx, cfg.ConnConfig.Copy())
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return wrapErr(ctx, "connect", err)
	}
	if err := migrate(ctx, s.pool); err != nil {
		return err
	}
	epoch, err := store.NewEpoch()
	if err != nil {
		return wrapErr(ctx, "create epoch", err)
	}
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO meta (id, epoch, revision, compacted_through) VALUES (1, $1, 0, 0) ON CONFLICT (id) DO NOTHING`,
		epoch); err != nil {
		return wrapErr(ctx, "create meta", err)
	}
	return wrapErr(ctx, "read epoch", s.pool.QueryRow(ctx, `SELECT epoch FROM meta WHERE id = 1`).Scan(&s.epoch))
}

// migrate applies the embedded migrations not yet recorded in
// schema_migrations, in version order, each in its own transaction, while
// holding a session advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	ms, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return wrapErr(ctx, "load migrations", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return wrapErr(ctx, "migrate", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return wrapErr(ctx, "migrate", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock)); uerr != nil {
			conn.Conn().Close(context.Background()) // closing the session drops the lock
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return wrapErr(ctx, "create schema_migrations", err)
	}
	for _, m := range ms {
		if err := applyMigration(ctx, conn.Conn(), m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, m store.Migration) error {
	op := "migration " + m.Name
	tx, err := conn.Begin(ctx)
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	defer tx.Rollback(context.Background())
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
		return wrapErr(ctx, op, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, m.SQL); err != nil { // no arguments: simple protocol, several statements
		return wrapErr(ctx, op, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return wrapErr(ctx, op, err)
	}
	return wrapErr(ctx, op, tx.Commit(ctx))
}

// Epoch returns the random identifier created with the database.
func (s *Store) Epoch() string { return s.epoch }

// Notify returns the store's wake-up channel. It receives a value, without
// ever blocking a writer, after each write this Store commits, when a
// NOTIFY from another Store on the same database arrives, and when the
// periodic revision poll (Options.PollInterval) or a listener reconnect
// finds that something may have changed. Sends are coalesced; receivers
// should read Changes from their last revision. The channel is never closed.
func (s *Store) Notify() <-chan struct{} { return s.notify }

func (s *Store) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// listen keeps a dedicated connection LISTENing on notifyChannel until ctx
// ends, reconnecting with backoff after errors.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(s.done)
	lastRev := int64(-1)
	backoff := 100 * time.Millisecond
	for {
		connected, _ := s.listenOnce(ctx, cfg, &lastRev)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnce connects, LISTENs and waits for notifications, polling the
// revision whenever PollInterval passes without one. It returns when the
// connection fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, lastRev *int64) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return false, err
	}
	// Anything may have been committed while we were not listening.
	s.wake()
	for {
		wctx, cancel := context.WithTimeout(ctx, s.poll)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.wake()
			continue
		case ctx.Err() != nil:
			return true, ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed():
			return true, err
		}
		// PollInterval passed without a notification: check the revision.
		var rev int64
		if err := conn.QueryRow(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev); err != nil {
			return true, err
		}
		if rev != *lastRev {
			if *lastRev >= 0 {
				s.wake()
			}
			*lastRev = rev
		}
	}
}

// Ping checks that the database answers. Errors: store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	var rev int64
	return wrapErr(ctx, "ping", s.pool.QueryRow(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev))
}

// Close stops the listener and closes the pool. It is safe to call more than
// once. Methods called after Close fail with store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		s.pool.Close()
	})
	return nil
}

// write runs fn in one write transaction. When fn reports a change, the
// transaction NOTIFYs listeners (delivered at commit) and Notify's receiver
// is woken after the commit.
func (s *Store) write(ctx context.Context, op string, fn func(tx pgx.Tx) (changed bool, err error)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	defer tx.Rollback(context.Background())
	changed, err := fn(tx)
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	if changed {
		if _, err := tx.Exec(ctx, "NOTIFY "+notifyChannel); err != nil {
			return wrapErr(ctx, op, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return wrapErr(ctx, op, err)
	}
	if changed {
		s.wake()
	}
	return nil
}

// read runs fn in one read-only REPEATABLE READ transaction, so that
// everything it reads comes from the same snapshot.
func (s *Store) read(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	defer tx.Rollback(context.Background())
	if err := fn(tx); err != nil {
		return wrapErr(ctx, op, err)
	}
	return wrapErr(ctx, op, tx.Commit(ctx))
}

// bumpRevision adds n to the revision counter and returns the new value. It
// takes the meta row lock that serialises writers until the transaction ends.
func bumpRevision(ctx context.Context, tx pgx.Tx, n int64) (int64, error) {
	var rev int64
	err := tx.QueryRow(ctx, `UPDATE meta SET revision = revision + $1 WHERE id = 1 RETURNING revision`, n).Scan(&rev)
	return rev, err
}

// lockRevision takes the meta row lock and returns the current revision.
func lockRevision(ctx context.Context, tx pgx.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRow(ctx, `SELECT revision FROM meta WHERE id = 1 FOR UPDATE`).Scan(&rev)
	return rev, err
}
