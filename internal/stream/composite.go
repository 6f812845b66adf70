package stream

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// MaxCursorLen is the longest cursor the server accepts anywhere (the
// Cursor schema's maxLength in both specs). Every cursor it makes is
// shorter: a topic's cursor takes at most 256 characters, and a composite
// cursor over MaxStreamTopics topics at most 3545 (each topic's entry is
// at most 83 bytes before base64; see TestCompositeCursorLongest).
const MaxCursorLen = 4096

// MaxStreamTopics bounds the topics of one Server-Sent Events stream (the
// topic parameter's maxItems), so the entries of a composite cursor.
const MaxStreamTopics = 32

// compositePrefix starts a composite cursor: the position of every topic
// of a stream over several topics, so that one SSE id (Last-Event-ID)
// resumes them all. After it comes base64url of one entry per topic: its
// tag (8 bytes), the cursor's kind (1 byte), the epoch's length (1 byte)
// and epoch, and the position as a uvarint. legacyPrefix started the
// earlier form (base64url of a JSON object from subscription keys to
// cursors), still accepted so that a client reconnecting across an
// upgrade loses nothing. Neither can start a topic's cursor, which is
// plain base64url (no '.').
const (
	compositePrefix = "s1."
	legacyPrefix    = "m."
)

// topicTag identifies a topic in a composite cursor: the first 8 bytes of
// the SHA-256 of its path. A tag keeps the cursor short whatever the
// topics' lengths and lets any endpoint that takes a cursor for one topic
// find that topic's position.
func topicTag(topic string) [8]byte {
	sum := sha256.Sum256([]byte(topic))
	return [8]byte(sum[:8])
}

// Composite is a parsed composite cursor: a position per topic.
type Composite struct {
	byTag map[[8]byte]Cursor
}

// EncodeComposite returns the composite cursor of a stream whose topics
// are at the given cursors (topic path → cursor as sent). Entries are
// ordered by tag, so equal positions give equal cursors. It returns no
// error: the cursors are the server's own (one that does not parse is
// left out).
func EncodeComposite(cursors map[string]string) string {
	type entry struct {
		tag [8]byte
		cur Cursor
	}
	entries := make([]entry, 0, len(cursors))
	for topic, s := range cursors {
		if cur, err := ParseCursor(s); err == nil {
			entries = append(entries, entry{topicTag(topic), cur})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.tag[:], b.tag[:]) })
	b := make([]byte, 0, len(entries)*(8+2+32+binary.MaxVarintLen64))
	for _, e := range entries {
		b = append(b, e.tag[:]...)
		b = append(b, byte(e.cur.Kind), byte(len(e.cur.Epoch)))
		b = append(b, e.cur.Epoch...)
		b = binary.AppendUvarint(b, uint64(e.cur.Pos))
	}
	return compositePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// IsComposite reports whether s has the form of a composite cursor (it
// may still be malformed). It returns no error.
func IsComposite(s string) bool {
	return strings.HasPrefix(s, compositePrefix) || strings.HasPrefix(s, legacyPrefix)
}

// ParseComposite decodes a composite cursor. Errors: store.ErrInvalid (a
// client-safe message) when s is not a composite cursor this server made.
func ParseComposite(s string) (Composite, error) {
	bad := store.Errorf(store.CodeInvalid, "cursor is malformed: use a cursor exactly as the server sent it")
	if len(s) > MaxCursorLen {
		return Composite{}, bad
	}
	c := Composite{byTag: map[[8]byte]Cursor{}}
	switch {
	case strings.HasPrefix(s, compositePrefix):
		b, err := base64.RawURLEncoding.DecodeString(s[len(compositePrefix):])
		if err != nil || len(b) == 0 {
			return Composite{}, bad
		}
		for len(b) > 0 {
			if len(b) < 10 || len(c.byTag) == MaxStreamTopics {
				return Composite{}, bad
			}
			tag, kind, n := [8]byte(b[:8]), Kind(b[8]), int(b[9])
			b = b[10:]
			if len(b) < n {
				return Composite{}, bad
			}
			epoch := string(b[:n])
			pos, k := binary.Uvarint(b[n:])
			if k <= 0 || pos > math.MaxInt64 {
				return Composite{}, bad
			}
			b = b[n+k:]
			// Kind, epoch and position obey a topic cursor's rules.
			cur := Cursor{Kind: kind, Epoch: epoch, Pos: int64(pos)}
			if back, err := ParseCursor(cur.String()); err != nil || back != cur {
				return Composite{}, bad
			}
			if _, dup := c.byTag[tag]; dup {
				return Composite{}, bad
			}
			c.byTag[tag] = cur
		}
	case strings.HasPrefix(s, legacyPrefix):
		b, err := base64.RawURLEncoding.DecodeString(s[len(legacyPrefix):])
		if err != nil {
			return Composite{}, bad
		}
		var m map[string]string
		if json.Unmarshal(b, &m) != nil || len(m) == 0 || len(m) > MaxStreamTopics {
			return Composite{}, bad
		}
		for key, cur := range m {
			p, err := ParseCursor(cur)
			if err != nil {
				return Composite{}, bad
			}
			// The key was a subscription key: the topic, then "?" and
			// the selector and filter when there were.
			topic, _, _ := strings.Cut(key, "?")
			c.byTag[topicTag(topic)] = p
		}
	default:
		return Composite{}, bad
	}
	return c, nil
}

// For returns the position the composite cursor holds for topic, and
// whether it holds one. It returns no error.
func (c Composite) For(topic string) (Cursor, bool) {
	cur, ok := c.byTag[topicTag(topic)]
	return cur, ok
}

// ParseCursorFor decodes a cursor given for topic: a topic's cursor, or a
// composite cursor (an SSE id of a stream over several topics) holding a
// position for topic. Errors: store.ErrInvalid (a client-safe message)
// when s is malformed, or is a composite cursor without topic.
func ParseCursorFor(s, topic string) (Cursor, error) {
	if !IsComposite(s) {
		return ParseCursor(s)
	}
	c, err := ParseComposite(s)
	if err != nil {
		return Cursor{}, err
	}
	cur, ok := c.For(topic)
	if !ok {
		return Cursor{}, store.Errorf(store.CodeInvalid, "this composite cursor (the id of a /v1/events stream over several topics) holds no position for topic %s: pass the id of a stream that includes it, or the cursor of one of its events", clip(topic))
	}
	return cur, nil
}
