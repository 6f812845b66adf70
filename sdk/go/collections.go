package tandem

import (
	"context"
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// UpdateCollectionOptions tune UpdateCollection.
type UpdateCollectionOptions struct {
	// IfMatch, when non-zero, applies the change only to this revision of
	// the collection (its ETag; ErrPreconditionFailed otherwise).
	IfMatch int64
	// NewWritesOnly does not check a new schema against the stored
	// resources: only later writes are validated by it.
	NewWritesOnly bool
}

// UpdateCollection changes a collection's schema, indexes or description
// with a JSON Merge Patch (RFC 7396) of {schema, indexes, description}:
// patch is any JSON object (a json.RawMessage is sent as is), where null
// removes a member. Subscribers of the collection's topic get a
// collection.updated event (Event.Collection). Errors: ErrNotFound,
// ErrPreconditionFailed (IfMatch), ErrConflict (the collection kept
// changing; retry), *ProblemError (422: an invalid schema or index, or
// stored resources the new schema refuses, listed in Problem.Offenders).
func (c *Client) UpdateCollection(ctx context.Context, name string, patch any, opts *UpdateCollectionOptions) (*client.Collection, error) {
	raw, err := rawJSON(patch)
	if err != nil {
		return nil, err
	}
	params := &client.UpdateCollectionParams{}
	if opts != nil && opts.IfMatch != 0 {
		tag := `"` + strconv.FormatInt(opts.IfMatch, 10) + `"`
		params.IfMatch = &tag
	}
	if opts != nil && opts.NewWritesOnly {
		v := client.NewWritesOnly
		params.Validate = &v
	}
	r, err := c.REST.UpdateCollectionWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, name, params, raw)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}
