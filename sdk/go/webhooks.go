package tandem

import (
	"context"
	"net/http"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// The webhook API (admin grant). Receivers verify deliveries with
// VerifyWebhook.

// CreateWebhook creates a webhook; the reply carries its secret, the only
// time it is returned. For a resource topic, w.Labels and w.Filter (a
// filter expression, as in SubscribeOptions.Filter) select the resources
// delivered; the reply shows the filter in canonical form. Errors:
// ErrNotFound (the topic's collection), ErrConflict (the server's limit),
// *ProblemError (422 naming the field: /filter, with the position, for a
// bad filter).
func (c *Client) CreateWebhook(ctx context.Context, w client.WebhookCreate) (*client.Webhook, error) {
	r, err := c.REST.CreateWebhookWithResponse(ctx, nil, w)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusCreated); err != nil {
		return nil, err
	}
	return r.JSON201, nil
}

// Webhooks lists every webhook with its status. Errors: *ProblemError.
func (c *Client) Webhooks(ctx context.Context) ([]client.Webhook, error) {
	r, err := c.REST.ListWebhooksWithResponse(ctx)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200.Items, nil
}

// Webhook reads one webhook's status. Errors: ErrNotFound, *ProblemError.
func (c *Client) Webhook(ctx context.Context, id string) (*client.Webhook, error) {
	r, err := c.REST.GetWebhookWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// DeleteWebhook deletes a webhook. Errors: ErrNotFound, *ProblemError.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	r, err := c.REST.DeleteWebhookWithResponse(ctx, id)
	if err != nil {
		return err
	}
	return check(r.StatusCode(), r.Body, http.StatusNoContent)
}

// TestWebhook sends a signed ping to the webhook's receiver and reports
// its answer. Errors: ErrNotFound, *ProblemError.
func (c *Client) TestWebhook(ctx context.Context, id string) (*client.WebhookTestResult, error) {
	r, err := c.REST.TestWebhookWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// ResumeWebhook restarts a paused or resync-required webhook, after since
// when not "". Errors: ErrNotFound, *ProblemError (410 for a cursor out of
// the history).
func (c *Client) ResumeWebhook(ctx context.Context, id, since string) (*client.Webhook, error) {
	var body client.WebhookResume
	if since != "" {
		body.Since = &since
	}
	r, err := c.REST.ResumeWebhookWithResponse(ctx, id, body)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}
