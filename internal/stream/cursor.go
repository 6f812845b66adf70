package stream

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// Kind says which history a cursor points into.
type Kind byte

// Cursor kinds.
const (
	// KindResource cursors are (store epoch, revision).
	KindResource Kind = 'r'
	// KindChannel cursors are (channel epoch, offset).
	KindChannel Kind = 'c'
)

// Cursor is a position in a stream. On the wire it is opaque: clients must
// store and return it unchanged.
type Cursor struct {
	Kind  Kind
	Epoch string
	Pos   int64
}

// String encodes the cursor as unpadded base64url.
func (c Cursor) String() string {
	raw := string(c.Kind) + ":" + c.Epoch + ":" + strconv.FormatInt(c.Pos, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes a cursor. Errors: store.ErrInvalid (a client-safe
// message) when s is not a cursor this server made.
func ParseCursor(s string) (Cursor, error) {
	bad := store.Errorf(store.CodeInvalid, "cursor is malformed: use a cursor exactly as the server sent it")
	if len(s) == 0 || len(s) > 256 {
		return Cursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 || len(parts[0]) != 1 || (parts[0][0] != byte(KindResource) && parts[0][0] != byte(KindChannel)) {
		return Cursor{}, bad
	}
	if parts[1] == "" || len(parts[1]) > 64 {
		return Cursor{}, bad
	}
	for _, r := range parts[1] {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_' || r == '.') {
			return Cursor{}, bad
		}
	}
	pos, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || pos < 0 || strconv.FormatInt(pos, 10) != parts[2] {
		return Cursor{}, bad
	}
	return Cursor{Kind: Kind(parts[0][0]), Epoch: parts[1], Pos: pos}, nil
}
