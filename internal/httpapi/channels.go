package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// PublishMessage publishes to a channel through the broker (201 + cursor).
func (s *Server) PublishMessage(ctx context.Context, req api.PublishMessageRequestObject) (api.PublishMessageResponseObject, error) {
	if !s.channels.Namespaces.For(req.Channel).ClientPublish {
		return nil, store.Errorf(store.CodeForbidden, "clients may not publish to channel %q (its namespace disallows client publishing)", req.Channel)
	}
	m, err := s.channels.Publish(ctx, req.Channel, req.Body.Data, publisherOf(ctx))
	if err != nil {
		return nil, err
	}
	return api.PublishMessage201JSONResponse(stream.ChannelMessageJSON(m)), nil
}

// ChannelHistory reads a channel's retained history.
func (s *Server) ChannelHistory(ctx context.Context, req api.ChannelHistoryRequestObject) (api.ChannelHistoryResponseObject, error) {
	since, err := optCursor(req.Params.Since, "since")
	if err != nil {
		return nil, err
	}
	limit := 100
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	msgs, next, err := s.channels.History(ctx, req.Channel, since, limit)
	if err != nil {
		return nil, err
	}
	out := api.MessageList{Items: make([]api.ChannelMessage, 0, len(msgs)), Cursor: next.String()}
	for _, m := range msgs {
		out.Items = append(out.Items, stream.ChannelMessageJSON(m))
	}
	return api.ChannelHistory200JSONResponse(out), nil
}

// ChannelPresence lists a channel's members.
func (s *Server) ChannelPresence(ctx context.Context, req api.ChannelPresenceRequestObject) (api.ChannelPresenceResponseObject, error) {
	if !s.channels.Namespaces.For(req.Channel).Presence {
		return nil, store.Errorf(store.CodeNotFound, "presence is disabled for channel %q", req.Channel)
	}
	ms, err := s.channels.Presence(ctx, req.Channel)
	if err != nil {
		return nil, err
	}
	return api.ChannelPresence200JSONResponse(api.Presence{Channel: req.Channel, Members: ms}), nil
}

// maxWait bounds a long-poll.
const maxWait = 60 * time.Second

// PollChanges long-polls one topic.
func (s *Server) PollChanges(ctx context.Context, req api.PollChangesRequestObject) (api.PollChangesResponseObject, error) {
	topic, err := stream.ParseTopic(req.Params.Topic)
	if err != nil {
		return nil, paramError(api.Query, "topic", store.ErrorMessage(err))
	}
	if err := principalOf(ctx).Check(auth.ActionRead, topic.Path); err != nil {
		return nil, err
	}
	since, err := optCursor(req.Params.Since, "since")
	if err != nil {
		return nil, err
	}
	wait := 30 * time.Second
	if req.Params.Wait != nil {
		if wait, err = parseWait(*req.Params.Wait); err != nil {
			return nil, err
		}
	}
	limit := 100
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	var (
		events []stream.EventFrame
		next   stream.Cursor
	)
	switch topic.Kind {
	case stream.TopicCollection, stream.TopicResource:
		var sel store.Selector
		if req.Params.Labels != nil {
			if sel, err = store.ParseSelector(*req.Params.Labels); err != nil {
				return nil, paramError(api.Query, "labels", store.ErrorMessage(err))
			}
		}
		events, next, err = s.resources.Poll(ctx, topic, sel, since, limit, wait, s.draining)
	default:
		if req.Params.Labels != nil {
			return nil, paramError(api.Query, "labels", "label selectors apply to resource topics only")
		}
		events, next, err = s.channels.Poll(ctx, topic, since, limit, wait, s.draining)
	}
	if err != nil {
		return nil, err
	}
	out := api.Changes{Events: make([]api.StreamEvent, 0, len(events)), Cursor: next.String()}
	for _, ev := range events {
		out.Events = append(out.Events, toStreamEvent(ev))
	}
	return api.PollChanges200JSONResponse(out), nil
}

func toStreamEvent(ev stream.EventFrame) api.StreamEvent {
	out := api.StreamEvent{Type: api.StreamEventType(ev.Type), Topic: ev.Topic, Event: api.StreamEventEvent(ev.Event), Cursor: ev.Cursor, Resource: ev.Resource, Message: ev.Message}
	if ev.Labels != "" {
		l := ev.Labels
		out.Labels = &l
	}
	return out
}

func parseWait(s string) (time.Duration, error) {
	var d time.Duration
	switch {
	case strings.HasSuffix(s, "ms"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "ms"))
		if err != nil {
			return 0, paramError(api.Query, "wait", "must look like 30s or 500ms")
		}
		d = time.Duration(n) * time.Millisecond
	default:
		n, err := strconv.Atoi(strings.TrimSuffix(s, "s"))
		if err != nil {
			return 0, paramError(api.Query, "wait", "must look like 30s or 500ms")
		}
		d = time.Duration(n) * time.Second
	}
	if d > maxWait {
		return 0, paramError(api.Query, "wait", "at most 60s")
	}
	return d, nil
}

func optCursor(s *string, name string) (*stream.Cursor, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	c, err := stream.ParseCursor(*s)
	if err != nil {
		return nil, paramError(api.Query, name, store.ErrorMessage(err))
	}
	return &c, nil
}

// publisherOf names the publishing principal (its subject; "" when
// anonymous).
func publisherOf(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok && !p.Anonymous() {
		return p.Subject
	}
	return ""
}
