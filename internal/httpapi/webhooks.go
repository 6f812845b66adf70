package httpapi

import (
	"context"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/wire"
)

// The webhook API: decode, call app, encode.

func webhookOf(w app.WebhookInfo) api.Webhook {
	return wire.Webhook(w.Webhook, w.Lag, w.LagExact, w.NewSecret)
}

// ListWebhooks lists every webhook with its status.
func (s *Server) ListWebhooks(ctx context.Context, _ api.ListWebhooksRequestObject) (api.ListWebhooksResponseObject, error) {
	ws, err := s.app.ListWebhooks(ctx, principalOf(ctx))
	if err != nil {
		return nil, err
	}
	out := api.WebhookList{Items: make([]api.Webhook, 0, len(ws))}
	for _, w := range ws {
		out.Items = append(out.Items, webhookOf(w))
	}
	return api.ListWebhooks200JSONResponse(out), nil
}

// CreateWebhook creates a webhook (201 + Location, with its secret).
func (s *Server) CreateWebhook(ctx context.Context, req api.CreateWebhookRequestObject) (api.CreateWebhookResponseObject, error) {
	b := req.Body
	spec := app.WebhookSpec{Topic: b.Topic, URL: b.Url, Enabled: b.Enabled}
	spec.Labels, spec.Filter, spec.Secret, spec.Description, spec.Since = deref(b.Labels), deref(b.Filter), deref(b.Secret), deref(b.Description), deref(b.Since)
	if b.MaxBatch != nil {
		spec.MaxBatch = *b.MaxBatch
	}
	w, err := s.app.CreateWebhook(ctx, principalOf(ctx), spec)
	if err != nil {
		return nil, err
	}
	loc := "/v1/webhooks/" + w.ID
	return api.CreateWebhook201JSONResponse{Body: webhookOf(w), Headers: api.CreateWebhook201ResponseHeaders{Location: &loc}}, nil
}

// GetWebhook returns one webhook with its status.
func (s *Server) GetWebhook(ctx context.Context, req api.GetWebhookRequestObject) (api.GetWebhookResponseObject, error) {
	w, err := s.app.GetWebhook(ctx, principalOf(ctx), req.Webhook)
	if err != nil {
		return nil, err
	}
	return api.GetWebhook200JSONResponse(webhookOf(w)), nil
}

// UpdateWebhook applies a merge patch to a webhook.
func (s *Server) UpdateWebhook(ctx context.Context, req api.UpdateWebhookRequestObject) (api.UpdateWebhookResponseObject, error) {
	if req.Body == nil {
		return nil, wire.ParamError(api.Body, "", "a merge patch body is required")
	}
	b := req.Body
	patch := app.WebhookPatch{Topic: b.Topic, Labels: b.Labels, Filter: b.Filter, URL: b.Url, Secret: b.Secret, Description: b.Description,
		Enabled: b.Enabled, MaxBatch: b.MaxBatch, RotateSecret: b.RotateSecret != nil && *b.RotateSecret}
	w, err := s.app.UpdateWebhook(ctx, principalOf(ctx), req.Webhook, patch)
	if err != nil {
		return nil, err
	}
	return api.UpdateWebhook200JSONResponse(webhookOf(w)), nil
}

// DeleteWebhook deletes a webhook (204).
func (s *Server) DeleteWebhook(ctx context.Context, req api.DeleteWebhookRequestObject) (api.DeleteWebhookResponseObject, error) {
	if err := s.app.DeleteWebhook(ctx, principalOf(ctx), req.Webhook); err != nil {
		return nil, err
	}
	return api.DeleteWebhook204Response{}, nil
}

// TestWebhook sends a ping and reports the receiver's answer.
func (s *Server) TestWebhook(ctx context.Context, req api.TestWebhookRequestObject) (api.TestWebhookResponseObject, error) {
	res, err := s.app.TestWebhook(ctx, principalOf(ctx), req.Webhook)
	if err != nil {
		return nil, err
	}
	return api.TestWebhook200JSONResponse(wire.WebhookTestResult(res.Status, res.Duration, res.Err)), nil
}

// ResumeWebhook restarts a webhook, optionally after a given cursor.
func (s *Server) ResumeWebhook(ctx context.Context, req api.ResumeWebhookRequestObject) (api.ResumeWebhookResponseObject, error) {
	since := ""
	if req.Body != nil {
		since = deref(req.Body.Since)
	}
	w, err := s.app.ResumeWebhook(ctx, principalOf(ctx), req.Webhook, since)
	if err != nil {
		return nil, err
	}
	return api.ResumeWebhook200JSONResponse(webhookOf(w)), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
