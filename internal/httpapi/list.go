package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/wire"
)

// pageToken is the opaque position of a page: the previous page's last
// ID and order values, and a digest of the query it belongs to, so that a
// token cannot continue another query.
type pageToken struct {
	After  string          `json:"a"`
	Values json.RawMessage `json:"v,omitempty"`
	Query  string          `json:"q,omitempty"`
}

// queryDigest identifies a list query by its canonical parts.
func queryDigest(labels, filter, order string) string {
	if labels == "" && filter == "" && order == "" {
		return ""
	}
	h := sha256.Sum256([]byte(labels + "\n" + filter + "\n" + order))
	return hex.EncodeToString(h[:8])
}

// ListResources returns one page, with a Link header to the next.
func (s *Server) ListResources(ctx context.Context, req api.ListResourcesRequestObject) (api.ListResourcesResponseObject, error) {
	opts := store.ListOptions{Collection: req.Collection, Limit: 100}
	var err error
	if req.Params.Labels != nil {
		if opts.Selector, err = store.ParseSelector(*req.Params.Labels); err != nil {
			return nil, wire.ParamError(api.Query, "labels", store.ErrorMessage(err))
		}
	}
	if req.Params.Filter != nil {
		if opts.Filter, err = store.ParseFilter(*req.Params.Filter); err != nil {
			return nil, wire.ParamError(api.Query, "filter", store.ErrorMessage(err))
		}
	}
	if req.Params.OrderBy != nil {
		if opts.OrderBy, err = store.ParseOrderBy(*req.Params.OrderBy); err != nil {
			return nil, wire.ParamError(api.Query, "orderBy", store.ErrorMessage(err))
		}
		for _, k := range opts.OrderBy {
			if err := store.CheckIndexField(k.Field); err != nil {
				return nil, wire.ParamError(api.Query, "orderBy", fmt.Sprintf("cannot order by %s: %s", k.Field, store.ErrorMessage(err)))
			}
		}
	}
	labels, filter, order := opts.Selector.String(), opts.Filter.String(), store.OrderString(opts.OrderBy)
	digest := queryDigest(labels, filter, order)
	if req.Params.Limit != nil {
		opts.Limit = *req.Params.Limit
	}
	if req.Params.PageToken != nil {
		var t pageToken
		b, err := base64.RawURLEncoding.DecodeString(*req.Params.PageToken)
		if err != nil || json.Unmarshal(b, &t) != nil || !store.ValidName(t.After) {
			return nil, wire.ParamError(api.Query, "pageToken", "is not a page token returned by this API")
		}
		if t.Query != digest {
			return nil, wire.ParamError(api.Query, "pageToken", "belongs to another query: repeat the labels, filter and orderBy of the request that returned it")
		}
		opts.After = t.After
		if len(opts.OrderBy) > 0 {
			if opts.AfterValues, err = store.DecodeKeyValues(t.Values); err != nil {
				return nil, wire.ParamError(api.Query, "pageToken", "is not a page token returned by this API")
			}
		}
	}
	page, err := s.app.ListResources(ctx, principalOf(ctx), opts)
	if err != nil {
		return nil, err
	}
	out := api.ResourceList{Items: make([]api.Resource, 0, len(page.Items)), Revision: page.Revision}
	for _, r := range page.Items {
		out.Items = append(out.Items, wire.Resource(r))
	}
	resp := api.ListResources200JSONResponse{Body: out}
	if page.More && len(page.Items) > 0 {
		t := pageToken{After: page.Items[len(page.Items)-1].ID, Query: digest}
		if len(opts.OrderBy) > 0 {
			t.Values = store.EncodeKeyValues(page.LastValues)
		}
		b, _ := json.Marshal(t)
		tok := base64.RawURLEncoding.EncodeToString(b)
		resp.Body.NextPageToken = &tok
		q := url.Values{"pageToken": {tok}, "limit": {strconv.Itoa(opts.Limit)}}
		for k, v := range map[string]string{"labels": labels, "filter": filter, "orderBy": order} {
			if v != "" {
				q.Set(k, v)
			}
		}
		link := fmt.Sprintf("</v1/collections/%s/resources?%s>; rel=\"next\"", req.Collection, q.Encode())
		resp.Headers.Link = &link
	}
	return resp, nil
}
