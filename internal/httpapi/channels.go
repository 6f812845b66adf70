package httpapi

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// PublishMessage publishes to a channel through the broker (201 + cursor).
func (s *Server) PublishMessage(ctx context.Context, req api.PublishMessageRequestObject) (api.PublishMessageResponseObject, error) {
	m, err := s.app.Publish(ctx, principalOf(ctx), channelTopic(req.Channel), req.Body.Data, restClient(ctx))
	if err != nil {
		return nil, err
	}
	return api.PublishMessage201JSONResponse(wire.Message(m)), nil
}

// channelTopic is the messages topic of a channel named in a path (the
// router has checked the name's pattern).
func channelTopic(ch string) stream.Topic {
	return stream.Topic{Kind: stream.TopicChannel, Channel: ch, Path: stream.MessagesTopic(ch)}
}

// ChannelHistory reads a channel's retained history.
func (s *Server) ChannelHistory(ctx context.Context, req api.ChannelHistoryRequestObject) (api.ChannelHistoryResponseObject, error) {
	since, err := optCursor(req.Params.Since, "since", stream.MessagesTopic(req.Channel))
	if err != nil {
		return nil, err
	}
	limit := 100
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	msgs, next, err := s.app.History(ctx, principalOf(ctx), req.Channel, since, limit)
	if err != nil {
		return nil, err
	}
	out := api.MessageList{Items: make([]api.ChannelMessage, 0, len(msgs)), Cursor: next.String()}
	for _, m := range msgs {
		out.Items = append(out.Items, wire.Message(m))
	}
	return api.ChannelHistory200JSONResponse(out), nil
}

// ChannelPresence lists one page of a channel's members.
func (s *Server) ChannelPresence(ctx context.Context, req api.ChannelPresenceRequestObject) (api.ChannelPresenceResponseObject, error) {
	page, err := s.app.Presence(ctx, principalOf(ctx), req.Channel, derefInt(req.Params.Limit), deref(req.Params.PageToken))
	if err != nil {
		return nil, err
	}
	out := api.Presence{Channel: req.Channel, Members: wire.Members(page.Members)}
	if page.Next != "" {
		out.NextPageToken = &page.Next
	}
	return api.ChannelPresence200JSONResponse(out), nil
}

// maxWait bounds a long-poll.
const maxWait = 60 * time.Second

// PollChanges long-polls one topic.
func (s *Server) PollChanges(ctx context.Context, req api.PollChangesRequestObject) (api.PollChangesResponseObject, error) {
	topic, err := stream.ParseTopic(req.Params.Topic)
	if err != nil {
		return nil, wire.ParamError(api.Query, "topic", store.ErrorMessage(err))
	}
	pr := app.PollRequest{Topic: topic, Limit: 100, Wait: 30 * time.Second, Client: remoteOf(ctx)}
	if pr.Since, err = optCursor(req.Params.Since, "since", topic.Path); err != nil {
		return nil, err
	}
	if req.Params.Wait != nil {
		if pr.Wait, err = parseWait(*req.Params.Wait); err != nil {
			return nil, err
		}
	}
	if req.Params.Limit != nil {
		pr.Limit = *req.Params.Limit
	}
	if req.Params.Labels != nil {
		if pr.Selector, err = store.ParseSelector(*req.Params.Labels); err != nil {
			return nil, wire.ParamError(api.Query, "labels", store.ErrorMessage(err))
		}
	}
	if req.Params.Filter != nil {
		if pr.Filter, err = store.ParseFilter(*req.Params.Filter); err != nil {
			return nil, wire.ParamError(api.Query, "filter", store.ErrorMessage(err))
		}
	}
	s.metrics.longpollWaiting.Inc()
	events, next, err := s.app.Poll(ctx, principalOf(ctx), pr, s.draining)
	s.metrics.longpollWaiting.Dec()
	if err != nil {
		return nil, err
	}
	result := "empty"
	if len(events) > 0 {
		result = "events"
	}
	s.metrics.longpollResponses.WithLabelValues(result).Inc()
	s.metrics.longpollEvents.Add(float64(len(events)))
	out := api.Changes{Events: make([]api.StreamEvent, 0, len(events)), Cursor: next.String()}
	for _, ev := range events {
		out.Events = append(out.Events, wire.StreamEvent(ev))
	}
	return api.PollChanges200JSONResponse(out), nil
}

func parseWait(s string) (time.Duration, error) {
	var d time.Duration
	switch {
	case strings.HasSuffix(s, "ms"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "ms"))
		if err != nil {
			return 0, wire.ParamError(api.Query, "wait", "must look like 30s or 500ms")
		}
		d = time.Duration(n) * time.Millisecond
	default:
		n, err := strconv.Atoi(strings.TrimSuffix(s, "s"))
		if err != nil {
			return 0, wire.ParamError(api.Query, "wait", "must look like 30s or 500ms")
		}
		d = time.Duration(n) * time.Second
	}
	if d > maxWait {
		return 0, wire.ParamError(api.Query, "wait", "at most 60s")
	}
	return d, nil
}

// optCursor decodes the optional cursor parameter name given for topic: a
// topic's cursor, or a composite SSE id holding topic's position.
func optCursor(s *string, name, topic string) (*stream.Cursor, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	c, err := stream.ParseCursorFor(*s, topic)
	if err != nil {
		return nil, wire.ParamError(api.Query, name, store.ErrorMessage(err))
	}
	return &c, nil
}
