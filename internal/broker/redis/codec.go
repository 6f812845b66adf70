package redis

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

// decodeMessage parses a message payload (after its 'm'):
// "<epoch>:<offset>:<time ms>:<len(publisher)>:<publisher><data>".
func decodeMessage(channel, s string) (broker.Message, error) {
	var f [4]string
	for i := range f {
		c := strings.IndexByte(s, ':')
		if c < 0 {
			return broker.Message{}, fmt.Errorf("short message payload")
		}
		f[i], s = s[:c], s[c+1:]
	}
	off, err1 := strconv.ParseInt(f[1], 10, 64)
	now, err2 := strconv.ParseInt(f[2], 10, 64)
	n, err3 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || err3 != nil || n < 0 || n > len(s) {
		return broker.Message{}, fmt.Errorf("bad message payload header %q", f)
	}
	return broker.Message{
		Channel:   channel,
		Epoch:     f[0],
		Offset:    off,
		Data:      json.RawMessage(s[n:]),
		Publisher: s[:n],
		Time:      time.UnixMilli(now),
	}, nil
}

// parseRead parses readScript's reply.
func parseRead(res []any) (top broker.Position, oldest int64, entries []any, err error) {
	if len(res) != 4 {
		return top, 0, nil, fmt.Errorf("%w: read script returned %v", broker.ErrUnavailable, res)
	}
	top.Epoch, _ = res[0].(string)
	top.Offset, _ = res[1].(int64)
	oldest, _ = res[2].(int64)
	entries, _ = res[3].([]any)
	return top, oldest, entries, nil
}

// parseEntry parses one XRANGE entry: [id, [t, ms, p, publisher, d, data]].
func parseEntry(channel, epoch string, e any) (broker.Message, error) {
	bad := func() (broker.Message, error) {
		return broker.Message{}, fmt.Errorf("%w: bad history entry %v", broker.ErrUnavailable, e)
	}
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return bad()
	}
	id, _ := pair[0].(string)
	fields, _ := pair[1].([]any)
	off, err := strconv.ParseInt(strings.TrimSuffix(id, "-0"), 10, 64)
	if err != nil {
		return bad()
	}
	m := broker.Message{Channel: channel, Epoch: epoch, Offset: off}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "t":
			t, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad()
			}
			m.Time = time.UnixMilli(t)
		case "p":
			m.Publisher = v
		case "d":
			m.Data = json.RawMessage(v)
		}
	}
	return m, nil
}

func sortMembers(ms []broker.Member) {
	slices.SortFunc(ms, func(x, y broker.Member) int {
		return cmp.Or(strings.Compare(x.ID, y.ID), strings.Compare(x.ConnID, y.ConnID))
	})
}
