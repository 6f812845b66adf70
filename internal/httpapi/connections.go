package httpapi

import (
	"context"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/wire"
)

// The connection API: decode, call app, encode.

// ListConnections lists the open connections of every node.
func (s *Server) ListConnections(ctx context.Context, req api.ListConnectionsRequestObject) (api.ListConnectionsResponseObject, error) {
	page, err := s.app.ListConnections(ctx, principalOf(ctx), deref(req.Params.Subject), false, derefInt(req.Params.Limit), deref(req.Params.PageToken))
	if err != nil {
		return nil, err
	}
	return api.ListConnections200JSONResponse(wire.ConnectionList(page)), nil
}

// ListSubjectConnections lists the open connections of one subject.
func (s *Server) ListSubjectConnections(ctx context.Context, req api.ListSubjectConnectionsRequestObject) (api.ListSubjectConnectionsResponseObject, error) {
	page, err := s.app.ListConnections(ctx, principalOf(ctx), req.Subject, true, derefInt(req.Params.Limit), deref(req.Params.PageToken))
	if err != nil {
		return nil, err
	}
	return api.ListSubjectConnections200JSONResponse(wire.ConnectionList(page)), nil
}

// DisconnectConnection closes one connection wherever it is.
func (s *Server) DisconnectConnection(ctx context.Context, req api.DisconnectConnectionRequestObject) (api.DisconnectConnectionResponseObject, error) {
	d, err := s.app.DisconnectConnection(ctx, principalOf(ctx), req.Connection, deref(req.Params.Reason), reconnect(req.Params.Reconnect))
	if err != nil {
		return nil, err
	}
	return api.DisconnectConnection200JSONResponse(wire.DisconnectResult(d)), nil
}

// DisconnectSubject closes every connection of a subject.
func (s *Server) DisconnectSubject(ctx context.Context, req api.DisconnectSubjectRequestObject) (api.DisconnectSubjectResponseObject, error) {
	d, err := s.app.DisconnectSubject(ctx, principalOf(ctx), req.Subject, deref(req.Params.Reason), reconnect(req.Params.Reconnect))
	if err != nil {
		return nil, err
	}
	return api.DisconnectSubject200JSONResponse(wire.DisconnectResult(d)), nil
}

// SubscribeSubject subscribes a subject's connections server-side.
func (s *Server) SubscribeSubject(ctx context.Context, req api.SubscribeSubjectRequestObject) (api.SubscribeSubjectResponseObject, error) {
	if req.Body == nil {
		return nil, wire.ParamError(api.Body, "", "a body with the topic is required")
	}
	d, err := s.app.ServerSubscribe(ctx, principalOf(ctx), req.Subject, req.Body.Topic, deref(req.Body.Labels))
	if err != nil {
		return nil, err
	}
	return api.SubscribeSubject200JSONResponse(wire.ServerSubscriptionResult(d)), nil
}

// UnsubscribeSubject ends a subject's subscriptions to a topic.
func (s *Server) UnsubscribeSubject(ctx context.Context, req api.UnsubscribeSubjectRequestObject) (api.UnsubscribeSubjectResponseObject, error) {
	d, err := s.app.ServerUnsubscribe(ctx, principalOf(ctx), req.Subject, req.Params.Topic, deref(req.Params.Labels))
	if err != nil {
		return nil, err
	}
	return api.UnsubscribeSubject200JSONResponse(wire.ServerSubscriptionResult(d)), nil
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// reconnect is the reconnect hint (default true).
func reconnect(p *bool) bool { return p == nil || *p }

// remoteKey carries the client's address on a request's context.
type remoteKey struct{}

// remoteOf is the client's address of the request ctx belongs to.
func remoteOf(ctx context.Context) string {
	r, _ := ctx.Value(remoteKey{}).(string)
	return r
}

// restClient is who makes a REST request, for the hooks.
func restClient(ctx context.Context) app.ClientInfo {
	return app.ClientInfo{Transport: "rest", Remote: remoteOf(ctx)}
}
