package stream

// Bookmark queues a bookmark of a live subscription: push receives the
// subscription's current cursor and queues the frame built from it. The
// subscription's lock is held from reading the position until push
// returns; Deliver holds the same lock while it queues an event, so a
// bookmark is never queued behind an event newer than its cursor. A client
// may therefore resume from the last cursor it received, event or
// bookmark, without receiving anything twice.
//
// attempted is false (and push is not called) when the subscription is
// not live yet, has ended, or its topic has no cursor (presence); pushed
// is push's result.
func (s *Subscription) Bookmark(feed *Feed, push func(Cursor) bool) (attempted, pushed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.closed {
		return false, false
	}
	cur, ok := s.cursorLocked(feed)
	if !ok {
		return false, false
	}
	return true, push(cur)
}

// cursorLocked is Cursor for callers holding s.mu.
func (s *Subscription) cursorLocked(feed *Feed) (Cursor, bool) {
	last := s.last
	switch s.Topic.Kind {
	case TopicCollection, TopicResource:
		if l := feed.Last(); l > last {
			last = l
		}
		return feed.Cursor(last), true
	case TopicChannel:
		return Cursor{Kind: KindChannel, Epoch: s.epoch, Pos: last}, true
	}
	return Cursor{}, false
}
