// Package sqlite implements store.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go).
//
// The database runs in WAL mode. All writes go through a single writer
// connection: each write bumps the revision counter in the meta table, writes
// the rows and appends to the change log inside a BEGIN IMMEDIATE
// transaction, so commit order equals revision order. Writes that arrive
// while one is being committed are committed together (group commit): the
// writer runs each in its own savepoint, so a failing write is undone alone,
// then commits and syncs once for the whole group. A write's caller gets its
// answer only after that commit. Reads use a separate pool of read-only
// connections and never wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/tandemhq/tandem/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ store.Store = (*Store)(nil)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection (or another process) before failing; 0 means 5s.
	BusyTimeout time.Duration
	// MaxReadConns caps the pool of read connections; 0 means 4.
	MaxReadConns int
}

// Store is a store.Store backed by one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w, r   *sql.DB // w: the single writer connection; r: read-only pool
	epoch  string
	notify chan struct{}
	// get is GetResource's query, prepared once on the read pool: parsing
	// it on every call was a fifth of the server's CPU under a GET load.
	get *sql.Stmt
	// ws are the write path's statements, prepared once on the writer
	// connection for the same reason.
	ws struct{ lookup, bump, upsert, delete, appendChange *sql.Stmt }

	// writes hands writes to the writer goroutine (unbuffered: a send
	// succeeds only when the writer takes it, so nothing is stranded when
	// it stops); stop ends it and writerDone says it has.
	writes     chan *writeReq
	stop       chan struct{}
	writerDone chan struct{}
	commits    atomic.Int64 // group commits so far (for tests)

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating it if needed) the SQLite database at path, applies
// any pending migrations and returns a Store. A database created by Open gets
// a new random epoch. path must name a file (":memory:" is refused, since
// the read pool and the writer need to share the database). Errors: a
// *store.Error with CodeInvalid for a bad path or options, otherwise an
// error that matches store.ErrUnavailable and wraps the driver's error.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, store.Errorf(store.CodeInvalid, "sqlite store: path must be a plain file path")
	}
	if opts.BusyTimeout < 0 || opts.MaxReadConns < 0 {
		return nil, store.Errorf(store.CodeInvalid, "sqlite store: negative option")
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.MaxReadConns == 0 {
		opts.MaxReadConns = 4
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)

	wq := url.Values{}
	wq.Add("_pragma", "busy_timeout("+busy+")")
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "synchronous(FULL)") // a lost commit would reuse revisions
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, wrapErr(ctx, "open", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w, notify: make(chan struct{}, 1), writes: make(chan *writeReq),
		stop: make(chan struct{}), writerDone: make(chan struct{})}
	if err := s.init(ctx); err != nil {
		w.Close()
		return nil, err
	}
	for _, p := range s.writeStmts() {
		if *p.stmt, err = w.PrepareContext(ctx, p.sql); err != nil {
			s.closeStmts()
			w.Close()
			return nil, wrapErr(ctx, "prepare", err)
		}
	}
	go s.writer()

	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout("+busy+")")
	rq.Add("_pragma", "foreign_keys(1)")
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		s.Close()
		return nil, wrapErr(ctx, "open", err)
	}
	r.SetMaxOpenConns(opts.MaxReadConns)
	r.SetMaxIdleConns(opts.MaxReadConns)
	s.r = r
	if s.get, err = r.PrepareContext(ctx, lookupSQL); err != nil {
		s.Close()
		return nil, wrapErr(ctx, "prepare", err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// init migrates the database and loads (or creates) the epoch.
func (s *Store) init(ctx context.Context) error {
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	epoch, err := store.NewEpoch()
	if err != nil {
		return wrapErr(ctx, "create epoch", err)
	}
	if _, err := s.w.ExecContext(ctx,
		`INSERT INTO meta (id, epoch, revision, compacted_through) VALUES (1, ?, 0, 0) ON CONFLICT (id) DO NOTHING`,
		epoch); err != nil {
		return wrapErr(ctx, "create meta", err)
	}
	if err := s.w.QueryRowContext(ctx, `SELECT epoch FROM meta WHERE id = 1`).Scan(&s.epoch); err != nil {
		return wrapErr(ctx, "read epoch", err)
	}
	return nil
}

// migrate applies the embedded migrations that are not yet recorded in
// schema_migrations, in version order, each in its own transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := store.LoadMigrations(migrationFS, "migrations")
	if err != nil {
		return wrapErr(ctx, "load migrations", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return wrapErr(ctx, "create schema_migrations", err)
	}
	for _, m := range ms {
		if err := applyMigration(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m store.Migration) error {
	op := "migration " + m.Name
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return wrapErr(ctx, op, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return wrapErr(ctx, op, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, toMicros(now())); err != nil {
		return wrapErr(ctx, op, err)
	}
	return wrapErr(ctx, op, tx.Commit())
}

// Epoch returns the random identifier created with the database.
func (s *Store) Epoch() string { return s.epoch }

// Notify returns the store's wake-up channel: it receives a value, without
// ever blocking a writer, after each committed write (sends are coalesced).
// Only writes made through this Store are signalled. The channel is never
// closed.
func (s *Store) Notify() <-chan struct{} { return s.notify }

func (s *Store) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Ping checks that the database can be read. Errors: store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	var rev int64
	return wrapErr(ctx, "ping", s.r.QueryRowContext(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev))
}

// Close closes the database. It is safe to call more than once; later
// calls return the first call's result. Methods called after Close fail with
// store.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.writerDone // the group being committed, if any, finishes first
		errs := s.closeStmts()
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		errs = append(errs, s.w.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = wrapErr(nil, "close", err)
		}
	})
	return s.closeErr
}

// preparedStmt is a statement prepared at Open and where it is kept.
type preparedStmt struct {
	stmt **sql.Stmt
	sql  string
}

// writeStmts lists the write connection's prepared statements.
func (s *Store) writeStmts() []preparedStmt {
	return []preparedStmt{
		{&s.ws.lookup, lookupSQL}, {&s.ws.bump, bumpSQL}, {&s.ws.upsert, upsertSQL},
		{&s.ws.delete, deleteSQL}, {&s.ws.appendChange, appendChangeSQL},
	}
}

// closeStmts closes the prepared statements and returns their errors.
func (s *Store) closeStmts() []error {
	var errs []error
	for _, p := range append(s.writeStmts(), preparedStmt{&s.get, lookupSQL}) {
		if *p.stmt != nil {
			errs = append(errs, (*p.stmt).Close())
		}
	}
	return errs
}

// maxGroup caps how many writes share one commit, so that one group's
// transaction (and the wait of its first write) stays short.
const maxGroup = 256

// writeFunc does one write's statements in tx. ctx is never cancelled
// (see writeReq). changed reports a change-log entry, for Notify.
type writeFunc func(ctx context.Context, tx *sql.Tx) (changed bool, err error)

// writeReq is one write waiting for the writer goroutine.
type writeReq struct {
	// ctx is the caller's: a write whose ctx is done before its group
	// starts is not run. Once started it runs under a context that cannot
	// be cancelled, because an interrupted statement inside an explicit
	// SQLite transaction rolls the whole transaction back, the other
	// writes of the group with it.
	ctx  context.Context
	op   string
	fn   writeFunc
	done chan error // buffered; receives the write's result once
}

// write runs fn as one atomic write, committed alone or with the writes
// that queued up meanwhile, and returns after the commit. Notify's receiver
// is woken after a commit that included a change. Errors: fn's error (its
// statements are undone), ctx's error when ctx ends before the write
// starts, store.ErrUnavailable (including after Close, and when the group's
// commit fails).
func (s *Store) write(ctx context.Context, op string, fn writeFunc) error {
	req := &writeReq{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-s.stop:
		return wrapErr(ctx, op, errors.New("store is closed"))
	case <-ctx.Done():
		return wrapErr(ctx, op, ctx.Err())
	}
	// Once taken, the write is answered after its group commits or fails:
	// returning early on ctx would report failure for a write that may
	// still commit.
	return <-req.done
}

// writer takes the writes one group at a time until Close: the first one
// waiting, plus every other one already waiting (up to maxGroup).
func (s *Store) writer() {
	defer close(s.writerDone)
	group := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case req := <-s.writes:
			group = append(group[:0], req)
		case <-s.stop:
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case req := <-s.writes:
				group = append(group, req)
			default:
				break more
			}
		}
		s.commitGroup(group)
		clear(group)
	}
}

// commitGroup runs the writes of group in one transaction, each in its own
// savepoint when there are several, commits once and answers each write.
func (s *Store) commitGroup(group []*writeReq) {
	ctx := context.Background()
	errs := make([]error, len(group))
	run := 0
	for i, req := range group {
		if err := req.ctx.Err(); err != nil {
			errs[i] = err
		} else {
			run++
		}
	}
	// fail answers every write that has no error yet with err.
	fail := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	if run > 0 {
		s.runGroup(ctx, group, errs, run > 1, fail)
	}
	for i, req := range group {
		req.done <- wrapErr(req.ctx, req.op, errs[i])
	}
}

// runGroup is commitGroup's transaction. Writes with an error in errs are
// skipped; the others get their result in errs.
func (s *Store) runGroup(ctx context.Context, group []*writeReq, errs []error, savepoints bool, fail func(error)) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	defer tx.Rollback()
	changed, ok := false, false
	for i, req := range group {
		if errs[i] != nil {
			continue
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
				fail(err)
				return
			}
		}
		c, err := req.fn(context.WithoutCancel(req.ctx), tx)
		if err == nil {
			changed, ok = changed || c, true
		} else {
			errs[i] = err
			if !savepoints {
				return // the deferred rollback undoes it
			}
			// Undo this write only. If SQLite already rolled the whole
			// transaction back (some I/O and lock errors do), the
			// savepoint is gone and so is every write of the group.
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
				fail(err)
				return
			}
		}
		if savepoints {
			if _, err := tx.ExecContext(ctx, `RELEASE w`); err != nil {
				fail(err)
				return
			}
		}
	}
	if !ok {
		return
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	s.commits.Add(1)
	if changed {
		s.wake()
	}
}

// read runs fn in one read transaction, so that everything it reads comes
// from the same snapshot.
func (s *Store) read(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return wrapErr(ctx, op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return wrapErr(ctx, op, err)
	}
	return wrapErr(ctx, op, tx.Commit())
}

// bumpSQL adds to the revision counter and returns the new value.
const bumpSQL = `UPDATE meta SET revision = revision + ? WHERE id = 1 RETURNING revision`

// bumpRevision adds n to the revision counter and returns the new value.
func (s *Store) bumpRevision(ctx context.Context, tx *sql.Tx, n int64) (int64, error) {
	var rev int64
	err := tx.StmtContext(ctx, s.ws.bump).QueryRowContext(ctx, n).Scan(&rev)
	return rev, err
}
