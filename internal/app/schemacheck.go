package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// DefaultSchemaCheckTimeout is how long UpdateCollection may spend
// checking the stored resources against a new schema (see
// Options.SchemaCheckTimeout).
const DefaultSchemaCheckTimeout = 10 * time.Second

// MaxOffenders is how many refused resources a *SchemaOffendersError lists.
const MaxOffenders = 10

// Page sizes of the check: it starts with checkFirstPage resources, then
// sizes its pages to hold about checkPageBytes (at most checkMaxPage
// resources), so it holds one page in memory whatever the collection's
// size; it reads the change log checkChangesPage entries at a time.
const (
	checkFirstPage   = 16
	checkMaxPage     = 500
	checkPageBytes   = 256 << 10
	checkChangesPage = 64
)

// SchemaOffender is a stored resource that a new schema refuses: its ID,
// the JSON pointer of the first violation in the resource (e.g.
// "/data/qty") and what is wrong there.
type SchemaOffender struct {
	ID      string
	Pointer string
	Detail  string
}

// SchemaOffendersError refuses a new schema that stored resources do not
// satisfy; Offenders are the first ones found (at most MaxOffenders). It
// has the code store.CodeUnprocessable.
type SchemaOffendersError struct {
	Collection string
	Offenders  []SchemaOffender
}

func (e *SchemaOffendersError) Error() string {
	o := e.Offenders[0]
	msg := fmt.Sprintf("stored resources of collection %q do not match the new schema: resource %q at %s: %s", e.Collection, o.ID, o.Pointer, o.Detail)
	if len(e.Offenders) > 1 {
		msg += fmt.Sprintf(" (and %d more listed in offenders", len(e.Offenders)-1)
		if len(e.Offenders) == MaxOffenders {
			msg += ", perhaps others after them"
		}
		msg += ")"
	}
	return msg + "; fix them first, or apply the schema to new writes only (validate=new-writes-only)"
}

// Is makes errors.Is(err, &store.Error{Code: store.CodeUnprocessable}) true.
func (e *SchemaOffendersError) Is(target error) bool {
	t, ok := target.(*store.Error)
	return ok && t.Code == store.CodeUnprocessable
}

// As lets store.ErrorCode and store.ErrorMessage read it.
func (e *SchemaOffendersError) As(target any) bool {
	if t, ok := target.(**store.Error); ok {
		*t = &store.Error{Code: store.CodeUnprocessable, Message: e.Error()}
		return true
	}
	return false
}

// errCheckBudget is the cause of a check that ran out of its time.
var errCheckBudget = errors.New("the schema-check budget ran out")

// schemaCheck is one check of a collection's stored resources against a
// new schema, bound to the App's schema-check budget (its ctx) from
// newSchemaCheck to close.
type schemaCheck struct {
	a         *App
	ctx       context.Context
	cancel    context.CancelFunc
	name      string
	cs        *collectionSchema
	checked   int
	offenders []SchemaOffender
}

// newSchemaCheck starts the budget of a check of collection name against
// cs; the caller closes it.
func (a *App) newSchemaCheck(ctx context.Context, name string, cs *collectionSchema) *schemaCheck {
	ctx, cancel := context.WithTimeoutCause(ctx, a.checkTimeout, errCheckBudget)
	return &schemaCheck{a: a, ctx: ctx, cancel: cancel, name: name, cs: cs}
}

// close ends the check's budget.
func (c *schemaCheck) close() { c.cancel() }

// run checks every stored resource, page by page, then the resources
// written while it ran (from the change log), and returns the revision
// through which every resource was checked
// (store.CollectionCondition.CheckedThrough). Errors: a
// *SchemaOffendersError, a ValidationError (invalid-value) naming /schema
// when the budget ran out, store.ErrCollectionChanged when the change log
// no longer holds what was written meanwhile, the store's, ctx's.
func (c *schemaCheck) run() (int64, error) {
	from, err := c.scan(c.ctx)
	if err != nil {
		return 0, c.fail(err)
	}
	return c.more(from)
}

// more checks the resources created or updated after revision through
// (what UpdateCollection refused as unchecked) and returns the revision
// through which they now are. Errors: as run's.
func (c *schemaCheck) more(through int64) (int64, error) {
	through, err := c.since(c.ctx, through)
	if err != nil {
		return 0, c.fail(err)
	}
	if len(c.offenders) > 0 {
		return 0, &SchemaOffendersError{Collection: c.name, Offenders: c.offenders}
	}
	return through, nil
}

// errEnough stops a check that has found MaxOffenders offenders.
var errEnough = errors.New("enough offenders")

// scan checks the stored resources and returns the revision its first
// page was read at: what changed after it is for since.
func (c *schemaCheck) scan(ctx context.Context) (int64, error) {
	opts := store.ListOptions{Collection: c.name, Limit: checkFirstPage}
	from := int64(-1)
	for {
		page, err := c.a.store.ListResources(ctx, opts)
		if err != nil {
			return 0, err
		}
		if from < 0 {
			from = page.Revision
		}
		if len(page.Items) == 0 {
			return from, nil
		}
		last, size := page.Items[len(page.Items)-1].ID, 0
		for i := range page.Items {
			r := page.Items[i]
			size += len(r.Data) + 64
			if err := c.check(ctx, r.ID, r.Data); err != nil {
				return 0, err
			}
			page.Items[i] = store.Resource{} // release it before the next read
		}
		if !page.More {
			return from, nil
		}
		opts.After = last
		opts.Limit = min(checkMaxPage, max(1, checkPageBytes*len(page.Items)/max(1, size)))
	}
}

// since checks the resources created or updated after revision from and
// returns the revision of the last change it read (from when none).
func (c *schemaCheck) since(ctx context.Context, from int64) (int64, error) {
	through := from
	for {
		changes, err := c.a.store.Changes(ctx, through, checkChangesPage)
		if errors.Is(err, store.ErrCompacted) {
			return 0, store.Errorf(store.CodeCollectionChanged, "the change log no longer holds the writes made while the schema was checked")
		}
		if err != nil {
			return 0, err
		}
		for _, ch := range changes {
			through = ch.Revision
			if ch.Resource.Collection != c.name || (ch.Type != store.Created && ch.Type != store.Updated) {
				continue
			}
			if err := c.checkChange(ctx, ch); err != nil {
				return 0, err
			}
		}
		if len(changes) < checkChangesPage {
			return through, nil
		}
	}
}

// checkChange checks the state a change wrote; a refused state counts only
// if it is still the resource's (a later write replaced or deleted it
// otherwise, and is checked in its turn).
func (c *schemaCheck) checkChange(ctx context.Context, ch store.Change) error {
	n := len(c.offenders)
	if err := c.check(ctx, ch.Resource.ID, ch.Resource.Data); err != nil || len(c.offenders) == n {
		return err
	}
	cur, err := c.a.store.GetResource(ctx, c.name, ch.Resource.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case cur.Revision == ch.Revision:
		return nil
	}
	c.offenders = c.offenders[:n]
	return nil
}

// check validates one resource's data, noting it when refused. Errors:
// errEnough once MaxOffenders are noted, ctx's.
func (c *schemaCheck) check(ctx context.Context, id string, data []byte) error {
	c.checked++
	err := validateData(ctx, c.cs, data, "/data")
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	o := SchemaOffender{ID: id, Pointer: "/data", Detail: ve.Message}
	if len(ve.Fields) > 0 {
		o.Pointer, o.Detail = ve.Fields[0].Pointer, ve.Fields[0].Detail
	}
	c.offenders = append(c.offenders, o)
	if len(c.offenders) == MaxOffenders {
		return errEnough
	}
	return nil
}

// fail turns what stopped a check into its error.
func (c *schemaCheck) fail(err error) error {
	switch {
	case errors.Is(err, errEnough):
		return &SchemaOffendersError{Collection: c.name, Offenders: c.offenders}
	case c.ctx.Err() != nil && errors.Is(context.Cause(c.ctx), errCheckBudget):
		detail := fmt.Sprintf("the stored resources could not all be checked against the new schema within the budget of %s (%d checked); apply it to new writes only with validate=new-writes-only", c.a.checkTimeout, c.checked)
		return &ValidationError{Code: store.CodeInvalidValue, Message: "/schema: " + detail, Fields: []FieldError{{Pointer: "/schema", Detail: detail}}}
	}
	return err
}
