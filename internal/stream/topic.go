package stream

import (
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// TopicKind says what a topic addresses.
type TopicKind int

// Topic kinds; each is the REST path that reads the same thing.
const (
	TopicCollection TopicKind = iota + 1 // collections/{c}/resources
	TopicResource                        // collections/{c}/resources/{id}
	TopicChannel                         // channels/{ch}/messages
	TopicPresence                        // channels/{ch}/presence
)

// Topic is a parsed subscription topic.
type Topic struct {
	Kind       TopicKind
	Collection string
	ID         string
	Channel    string
	// Path is the canonical topic string.
	Path string
}

// ParseTopic parses a topic path. Errors: store.ErrInvalid naming the
// problem (unknown shape, invalid name, traversal attempts).
func ParseTopic(s string) (Topic, error) {
	segs := strings.Split(s, "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return Topic{}, store.Errorf(store.CodeInvalid, "topic %q has an empty, '.' or '..' segment", clip(s))
		}
	}
	switch {
	case len(segs) == 3 && segs[0] == "collections" && segs[2] == "resources":
		if !store.ValidName(segs[1]) {
			return Topic{}, store.Errorf(store.CodeInvalid, "topic %q: invalid collection name", clip(s))
		}
		return Topic{Kind: TopicCollection, Collection: segs[1], Path: s}, nil
	case len(segs) == 4 && segs[0] == "collections" && segs[2] == "resources":
		if !store.ValidName(segs[1]) || !store.ValidName(segs[3]) {
			return Topic{}, store.Errorf(store.CodeInvalid, "topic %q: invalid collection name or resource ID", clip(s))
		}
		return Topic{Kind: TopicResource, Collection: segs[1], ID: segs[3], Path: s}, nil
	case len(segs) == 3 && segs[0] == "channels" && (segs[2] == "messages" || segs[2] == "presence"):
		if !ValidChannel(segs[1]) {
			return Topic{}, store.Errorf(store.CodeInvalid, "topic %q: invalid channel name", clip(s))
		}
		k := TopicChannel
		if segs[2] == "presence" {
			k = TopicPresence
		}
		return Topic{Kind: k, Channel: segs[1], Path: s}, nil
	}
	return Topic{}, store.Errorf(store.CodeInvalid, "unknown topic %q: use collections/{c}/resources, collections/{c}/resources/{id}, channels/{ch}/messages or channels/{ch}/presence", clip(s))
}

// ValidChannel reports whether s is a channel name: 1–128 letters, digits,
// '.', '_', '-' or ':', starting with a letter or digit. A namespace is the
// part before the first ':' or '.' (e.g. "chat:room1").
func ValidChannel(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == '-' || c == ':'
		}
		if !ok {
			return false
		}
	}
	return true
}

// CollectionTopic is the topic of every change in a collection.
func CollectionTopic(c string) string { return "collections/" + c + "/resources" }

// ResourceTopic is the topic of one resource.
func ResourceTopic(c, id string) string { return "collections/" + c + "/resources/" + id }

// Key is the hub key of a subscription: the topic, plus the canonical
// selector and filter when there are, so equal subscriptions share
// encoded events.
func Key(topic string, p store.Predicate) string {
	return newKeySpec(topic, p).key
}

// keySpec is what a hub key of a resource topic stands for. It is
// registered with the key (hub.SubscribeWith), so the feed reads the
// parsed selector and filter instead of parsing keys back.
type keySpec struct {
	key    string
	pred   store.Predicate
	labels string // canonical selector text
	filter string // canonical filter text
}

func newKeySpec(topic string, p store.Predicate) *keySpec {
	if p.IsZero() {
		return &keySpec{key: topic}
	}
	s := &keySpec{pred: p, labels: p.Selector.String(), filter: p.Filter.String()}
	s.key = topic + "?" + s.labels
	if s.filter != "" {
		s.key += "&filter=" + s.filter
	}
	return s
}

// IsResource reports whether t is a resource topic (collection or
// resource), as opposed to a channel topic (messages or presence).
func (t Topic) IsResource() bool { return t.Kind == TopicCollection || t.Kind == TopicResource }

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
