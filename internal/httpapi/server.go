package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/wire"
)

// Server implements the generated strict server interface on top of app.App.
// Handlers return typed response variants or errors; errors are turned into
// problems by the error table in problem.go.
type Server struct {
	app   *app.App
	ready func(ctx context.Context) map[string]string
	// draining is closed when the server starts shutting down: waiting
	// long-polls answer at once with their cursor.
	draining <-chan struct{}
	metrics  *streamMetrics
}

var _ api.StrictServerInterface = (*Server)(nil)

// GetHealth answers the liveness probe.
func (s *Server) GetHealth(ctx context.Context, _ api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: api.Ok}, nil
}

// GetReady answers the readiness probe: 503 when a dependency fails.
func (s *Server) GetReady(ctx context.Context, _ api.GetReadyRequestObject) (api.GetReadyResponseObject, error) {
	checks := s.ready(ctx)
	for _, v := range checks {
		if v != "ok" {
			return api.GetReady503JSONResponse{Status: api.Unavailable, Checks: &checks}, nil
		}
	}
	return api.GetReady200JSONResponse{Status: api.Ok, Checks: &checks}, nil
}

// ListCollections lists every collection.
func (s *Server) ListCollections(ctx context.Context, _ api.ListCollectionsRequestObject) (api.ListCollectionsResponseObject, error) {
	cs, err := s.app.ListCollections(ctx, principalOf(ctx))
	if err != nil {
		return nil, err
	}
	out := api.CollectionList{Items: make([]api.Collection, 0, len(cs))}
	for _, c := range cs {
		out.Items = append(out.Items, wire.Collection(c))
	}
	return api.ListCollections200JSONResponse(out), nil
}

// CreateCollection creates a collection (201 + Location).
func (s *Server) CreateCollection(ctx context.Context, req api.CreateCollectionRequestObject) (api.CreateCollectionResponseObject, error) {
	spec := app.CollectionSpec{Name: req.Body.Name, Schema: req.Body.Schema, Description: deref(req.Body.Description), Indexes: wire.Indexes(req.Body.Indexes)}
	c, err := s.app.CreateCollectionSpec(ctx, principalOf(ctx), spec)
	if err != nil {
		return nil, err
	}
	loc := "/v1/collections/" + c.Name
	return api.CreateCollection201JSONResponse{Body: wire.Collection(c), Headers: api.CreateCollection201ResponseHeaders{Location: &loc}}, nil
}

// GetCollection returns one collection.
func (s *Server) GetCollection(ctx context.Context, req api.GetCollectionRequestObject) (api.GetCollectionResponseObject, error) {
	c, err := s.app.GetCollection(ctx, principalOf(ctx), req.Collection)
	if err != nil {
		return nil, err
	}
	tag := etag(c.Revision)
	return api.GetCollection200JSONResponse{Body: wire.Collection(c), Headers: api.GetCollection200ResponseHeaders{ETag: &tag}}, nil
}

// UpdateCollection applies a merge patch to a collection (200 + ETag).
func (s *Server) UpdateCollection(ctx context.Context, req api.UpdateCollectionRequestObject) (api.UpdateCollectionResponseObject, error) {
	body := req.ApplicationMergePatchPlusJSONBody
	if body == nil {
		body = req.JSONBody
	}
	if body == nil {
		return nil, wire.ParamError(api.Body, "", "a merge patch body is required")
	}
	var opts app.UpdateOptions
	if req.Params.IfMatch != nil {
		c, err := ifMatch(*req.Params.IfMatch)
		if err != nil {
			return nil, err
		}
		opts.IfMatch = c.IfMatch // "*": the collection exists, which the update requires anyway
	}
	opts.NewWritesOnly = req.Params.Validate != nil && *req.Params.Validate == api.NewWritesOnly
	c, err := s.app.UpdateCollection(ctx, principalOf(ctx), req.Collection, *body, opts)
	if err != nil {
		return nil, err
	}
	tag := etag(c.Revision)
	return api.UpdateCollection200JSONResponse{Body: wire.Collection(c), Headers: api.UpdateCollection200ResponseHeaders{ETag: &tag}}, nil
}

// DeleteCollection deletes a collection and its resources.
func (s *Server) DeleteCollection(ctx context.Context, req api.DeleteCollectionRequestObject) (api.DeleteCollectionResponseObject, error) {
	if err := s.app.DeleteCollection(ctx, principalOf(ctx), req.Collection); err != nil {
		return nil, err
	}
	return api.DeleteCollection204Response{}, nil
}

// CreateResource creates a resource (201 + Location + ETag).
func (s *Server) CreateResource(ctx context.Context, req api.CreateResourceRequestObject) (api.CreateResourceResponseObject, error) {
	var id string
	if req.Body.Id != nil {
		id = *req.Body.Id
	}
	r, err := s.app.CreateResource(ctx, principalOf(ctx), req.Collection, id, req.Body.Data, labelsOf(req.Body.Labels))
	if err != nil {
		return nil, err
	}
	loc, tag := location(r), etag(r.Revision)
	return api.CreateResource201JSONResponse{Body: wire.Resource(r), Headers: api.CreateResource201ResponseHeaders{Location: &loc, ETag: &tag}}, nil
}

// GetResource returns a resource, or 304 when If-None-Match matches.
// The body is encoded once per revision by app's resource encoder
// (wire.Frames.EncodeResource) and usually comes from app's resource
// cache.
func (s *Server) GetResource(ctx context.Context, req api.GetResourceRequestObject) (api.GetResourceResponseObject, error) {
	r, err := s.app.GetResourceEncoded(ctx, principalOf(ctx), req.Collection, req.Id)
	if err != nil {
		return nil, err
	}
	if req.Params.IfNoneMatch != nil {
		revs, any, err := parseETags(*req.Params.IfNoneMatch, "If-None-Match")
		if err != nil {
			return nil, err
		}
		if any || contains(revs, r.Revision) {
			return api.GetResource304Response{Headers: api.GetResource304ResponseHeaders{ETag: &r.Tag}}, nil
		}
	}
	return encodedResource(r), nil
}

// encodedResource is the 200 answer of GetResource with its body already
// encoded: what api.GetResource200JSONResponse would write, without
// encoding it again.
type encodedResource app.EncodedResource

// jsonContentType is the Content-Type value of a JSON answer (never
// modified: a Header.Add would copy it, its capacity being 1).
var jsonContentType = []string{"application/json"}

// VisitGetResourceResponse implements api.GetResourceResponseObject.
// Errors: the connection's write error.
func (e encodedResource) VisitGetResourceResponse(w http.ResponseWriter) error {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Etag"] = []string{e.Tag}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(e.Body)
	return err
}

// ReplaceResource creates or replaces a resource (201 or 200, with ETag).
func (s *Server) ReplaceResource(ctx context.Context, req api.ReplaceResourceRequestObject) (api.ReplaceResourceResponseObject, error) {
	var cond store.Precondition
	if req.Params.IfMatch != nil {
		c, err := ifMatch(*req.Params.IfMatch)
		if err != nil {
			return nil, err
		}
		cond = c
	}
	if req.Params.IfNoneMatch != nil {
		if strings.TrimSpace(*req.Params.IfNoneMatch) != "*" {
			return nil, wire.ParamError(api.Header, "If-None-Match", `only "*" (create-only) is supported on PUT`)
		}
		cond.CreateOnly = true
	}
	r, created, err := s.app.ReplaceResource(ctx, principalOf(ctx), req.Collection, req.Id, req.Body.Data, labelsOf(req.Body.Labels), cond)
	if err != nil {
		return nil, err
	}
	tag := etag(r.Revision)
	if created {
		loc := location(r)
		return api.ReplaceResource201JSONResponse{Body: wire.Resource(r), Headers: api.ReplaceResource201ResponseHeaders{ETag: &tag, Location: &loc}}, nil
	}
	return api.ReplaceResource200JSONResponse{Body: wire.Resource(r), Headers: api.ReplaceResource200ResponseHeaders{ETag: &tag}}, nil
}

// PatchResource applies a JSON Merge Patch.
func (s *Server) PatchResource(ctx context.Context, req api.PatchResourceRequestObject) (api.PatchResourceResponseObject, error) {
	var rev int64
	if req.Params.IfMatch != nil {
		c, err := ifMatch(*req.Params.IfMatch)
		if err != nil {
			return nil, err
		}
		rev = c.IfMatch
	}
	if req.Body == nil {
		return nil, wire.ParamError(api.Body, "", "a merge patch body is required")
	}
	r, err := s.app.PatchResource(ctx, principalOf(ctx), req.Collection, req.Id, *req.Body, rev)
	if err != nil {
		return nil, err
	}
	tag := etag(r.Revision)
	return api.PatchResource200JSONResponse{Body: wire.Resource(r), Headers: api.PatchResource200ResponseHeaders{ETag: &tag}}, nil
}

// DeleteResource deletes a resource (204).
func (s *Server) DeleteResource(ctx context.Context, req api.DeleteResourceRequestObject) (api.DeleteResourceResponseObject, error) {
	var cond store.Precondition
	if req.Params.IfMatch != nil {
		c, err := ifMatch(*req.Params.IfMatch)
		if err != nil {
			return nil, err
		}
		cond = c
	}
	if _, err := s.app.DeleteResource(ctx, principalOf(ctx), req.Collection, req.Id, cond); err != nil {
		return nil, err
	}
	return api.DeleteResource204Response{}, nil
}

// ifMatch parses If-Match: `*` (must exist) or one strong ETag.
func ifMatch(v string) (store.Precondition, error) {
	revs, any, err := parseETags(v, "If-Match")
	if err != nil {
		return store.Precondition{}, err
	}
	if any {
		return store.Precondition{MustExist: true}, nil
	}
	if len(revs) != 1 {
		return store.Precondition{}, wire.ParamError(api.Header, "If-Match", "give exactly one entity tag")
	}
	return store.Precondition{IfMatch: revs[0]}, nil
}

// parseETags parses `*` or a comma-separated list of entity tags ("42", W/"42").
func parseETags(v, header string) (revs []int64, any bool, err error) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return nil, true, nil
	}
	for _, part := range strings.Split(v, ",") {
		p := strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if len(p) < 3 || p[0] != '"' || p[len(p)-1] != '"' {
			return nil, false, wire.ParamError(api.Header, header, `must be "*" or entity tags like "42"`)
		}
		n, perr := strconv.ParseInt(p[1:len(p)-1], 10, 64)
		if perr != nil || n <= 0 {
			return nil, false, wire.ParamError(api.Header, header, "entity tags are revisions: positive integers in quotes, like \"42\"")
		}
		revs = append(revs, n)
	}
	return revs, false, nil
}

func contains(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func etag(rev int64) string { return wire.ETag(rev) }

func location(r store.Resource) string { return wire.Location(r) }

func labelsOf(l *api.Labels) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return *l
}
