// Presence: join, leave and listing of members, and the sweeper that
// removes expired leases.

package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

func (b *Broker) leaseItem(channel string) string {
	return strconv.Itoa(len(channel)) + ":" + channel
}

// sweepLoop removes expired presence leases.
func (b *Broker) sweepLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.sweep(ctx); err != nil && ctx.Err() == nil {
			b.opts.Logger.Warn("redis presence sweep", "err", err)
		}
	}
}

func (b *Broker) sweep(ctx context.Context) error {
	const batch = 100
	for {
		n, err := sweepScript.Run(ctx, b.rdb, []string{b.leases}, b.opts.Prefix, batch).Int()
		if err != nil || n < batch {
			return err
		}
	}
}

// presenceJSON is a member as stored in Redis and sent in presence events.
type presenceJSON struct {
	ID     string          `json:"id"`
	ConnID string          `json:"conn"`
	Meta   json.RawMessage `json:"meta,omitempty"`
}

func decodeMember(b []byte) (broker.Member, error) {
	var p presenceJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return broker.Member{}, err
	}
	return broker.Member{ID: p.ID, ConnID: p.ConnID, Meta: p.Meta}, nil
}

// Join adds or renews the connection m.ConnID with a lease of ttl (ttl <= 0:
// no expiry), publishing a join when it is the member's first live
// connection. Errors: broker.ErrUnavailable (wrapped) when Redis fails,
// m.Meta is not JSON, or after Close; or ctx's error.
func (b *Broker) Join(ctx context.Context, channel string, m broker.Member, ttl time.Duration) error {
	if b.isClosed() {
		return errClosed
	}
	js, err := json.Marshal(presenceJSON{ID: m.ID, ConnID: m.ConnID, Meta: m.Meta})
	if err != nil {
		return fmt.Errorf("%w: presence meta: %w", broker.ErrUnavailable, err)
	}
	value := strconv.Itoa(len(m.ID)) + ":" + m.ID + string(js)
	grace := ms(max(time.Minute, 10*b.opts.SweepInterval))
	err = joinScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.key(channel, "pcount"), b.leases, b.key(channel, "pidx")},
		m.ConnID, m.ID, value, ms(ttl), b.leaseItem(channel)+m.ConnID, b.chPre+channel, js, grace,
	).Err()
	return b.fail(ctx, err)
}

// Leave removes the connection, publishing a leave when it was its
// member's last; an unknown connection is ignored. Errors:
// broker.ErrUnavailable (wrapped) when Redis fails or after Close, or
// ctx's error.
func (b *Broker) Leave(ctx context.Context, channel string, connID string) error {
	if b.isClosed() {
		return errClosed
	}
	err := leaveScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.key(channel, "pcount"), b.leases, b.key(channel, "pidx")},
		connID, b.leaseItem(channel)+connID, b.chPre+channel,
	).Err()
	return b.fail(ctx, err)
}

// Presence lists the channel's connections whose lease has not expired,
// ordered by member ID then connection ID. Errors: broker.ErrUnavailable
// (wrapped) when Redis fails or after Close, or ctx's error.
func (b *Broker) Presence(ctx context.Context, channel string) ([]broker.Member, error) {
	if b.isClosed() {
		return nil, errClosed
	}
	vals, err := presenceScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.leases}, b.leaseItem(channel),
	).StringSlice()
	if err != nil {
		return nil, b.fail(ctx, err)
	}
	out, err := decodeEntries(vals)
	if err != nil {
		return nil, err
	}
	sortMembers(out)
	return out, nil
}

// presenceStart is the ZRANGEBYLEX start of the members after after in
// P{ch}:pidx: the index key prefix of after (idx_key in scripts.go) with a
// terminator that sorts after all of after's connections and before every
// greater member ID.
func presenceStart(after string) string {
	if after == "" {
		return "-"
	}
	return "[" + strings.ReplaceAll(after, "\x00", "\x00\xff") + "\x00\x02"
}

// PresencePage lists the unexpired connections of at most limit members
// whose ID sorts after after, ordered by member ID then connection ID,
// reading one page of the channel's presence index (O(log n + page)).
// Errors: broker.ErrUnavailable (wrapped) when Redis fails or after Close,
// or ctx's error.
func (b *Broker) PresencePage(ctx context.Context, channel, after string, limit int) ([]broker.Member, bool, error) {
	if b.isClosed() {
		return nil, false, errClosed
	}
	res, err := presencePageScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.key(channel, "pidx"), b.leases},
		presenceStart(after), max(limit, 1), b.leaseItem(channel),
	).Slice()
	if err != nil {
		return nil, false, b.fail(ctx, err)
	}
	if len(res) != 2 {
		return nil, false, fmt.Errorf("%w: bad presence page reply", broker.ErrUnavailable)
	}
	more, _ := res[0].(int64)
	raw, _ := res[1].([]any)
	vals := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, false, fmt.Errorf("%w: bad presence page entry %v", broker.ErrUnavailable, v)
		}
		vals = append(vals, s)
	}
	out, err := decodeEntries(vals)
	if err != nil {
		return nil, false, err
	}
	return out, more == 1, nil
}

// decodeEntries decodes stored presence values
// ("<len(memberID)>:<memberID><member JSON>"). Errors:
// broker.ErrUnavailable (wrapped) for a malformed value.
func decodeEntries(vals []string) ([]broker.Member, error) {
	out := make([]broker.Member, 0, len(vals))
	for _, v := range vals {
		c := strings.IndexByte(v, ':')
		n, _ := strconv.Atoi(v[:max(c, 0)])
		if c < 0 || c+1+n > len(v) {
			return nil, fmt.Errorf("%w: bad presence entry %q", broker.ErrUnavailable, v)
		}
		m, err := decodeMember([]byte(v[c+1+n:]))
		if err != nil {
			return nil, fmt.Errorf("%w: bad presence entry: %w", broker.ErrUnavailable, err)
		}
		out = append(out, m)
	}
	return out, nil
}
