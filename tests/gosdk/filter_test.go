// Filters and orderBy: subscriptions told apart by their canonical filter
// (scripted), and against the real server a filtered Mirror that resources
// enter and leave, across a restart, and lists with filter and orderBy
// that page.

package gosdk_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	tandem "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// subscribeCanonical subscribes through the script, which answers with the
// canonical labels and filter given (as the server normalises them), and
// checks that the subscribe frame carried the options as written.
func subscribeCanonical(t *testing.T, sc *scriptConn, conn *tandem.Conn, topic string, opts tandem.SubscribeOptions, labels, filter string) *tandem.Subscription {
	t.Helper()
	type result struct {
		sub *tandem.Subscription
		err error
	}
	done := make(chan result, 1)
	ctx := testContext(t)
	go func() {
		sub, err := conn.Subscribe(ctx, topic, &opts)
		done <- result{sub, err}
	}()
	f := sc.expect("subscribe")
	if f.Topic != topic || f.Labels != opts.Labels || f.Filter != opts.Filter {
		t.Fatalf("subscribe frame %s, want topic %s, labels %q, filter %q", f.Raw, topic, opts.Labels, opts.Filter)
	}
	sc.reply(f.Ref, canonicalReply(f, labels, filter))
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.sub
}

// canonicalReply is the body of a subscribe reply with the canonical labels
// and filter.
func canonicalReply(f clientFrame, labels, filter string) map[string]any {
	body := map[string]any{"topic": f.Topic, "cursor": "c0", "start": "live"}
	if f.Since != "" {
		body["cursor"], body["start"] = f.Since, "since"
	}
	if labels != "" {
		body["labels"] = labels
	}
	if filter != "" {
		body["filter"] = filter
	}
	return body
}

// filteredEvent is a resource.created event of a subscription with labels
// and filter.
func filteredEvent(topic, labels, filter, cursor, id string) map[string]any {
	f := resourceEvent(topic, labels, cursor, id, 1, `{}`)
	if filter != "" {
		f["filter"] = filter
	}
	return f
}

// TestFilterScriptedRouting holds three subscriptions of one topic on one
// Conn, told apart only by labels and filter: every frame reaches the one
// whose canonical labels and filter (from the subscribe reply) it carries,
// also after a reconnect, which resubscribes each with its filter and
// cursor; Close and error frames name or match the canonical filter.
func TestFilterScriptedRouting(t *testing.T) {
	ss := newScriptServer(t)
	conn := connect(t, newClient(t, ss.URL))
	sc := ss.accept(t)
	topic := tandem.CollectionTopic("orders")
	subs := []struct {
		name           string
		opts           tandem.SubscribeOptions
		labels, filter string // canonical
		sub            *tandem.Subscription
	}{
		{name: "all"},
		{name: "big", opts: tandem.SubscribeOptions{Filter: "data.qty>2"}, filter: "data.qty > 2"},
		{name: "small-prod", opts: tandem.SubscribeOptions{Labels: "env = prod", Filter: "data.qty<=2||!exists(data.qty)"}, labels: "env=prod", filter: "data.qty <= 2 || !exists(data.qty)"},
	}
	for i := range subs {
		s := &subs[i]
		s.sub = subscribeCanonical(t, sc, conn, topic, s.opts, s.labels, s.filter)
		if got := s.sub.Filter(); got != s.filter {
			t.Errorf("%s: Filter() = %q, want the canonical %q", s.name, got, s.filter)
		}
	}
	// routes sends one event per subscription (after one in the form as
	// written, which matches none) and checks each gets its own.
	routes := func(sc *scriptConn, round string) {
		t.Helper()
		sc.send(filteredEvent(topic, "", "data.qty>2", "x-"+round, "not-canonical"))
		for _, s := range subs {
			sc.send(filteredEvent(topic, s.labels, s.filter, s.name+"-"+round, s.name+"-"+round))
		}
		for _, s := range subs {
			ev := next(t, s.sub)
			if ev.Resource == nil || ev.Resource.Id != s.name+"-"+round || ev.Filter != s.filter || ev.Labels != s.labels {
				t.Errorf("%s got %s (labels %q, filter %q), want its own event", s.name, describe(ev), ev.Labels, ev.Filter)
			}
		}
	}
	routes(sc, "1")

	// After a reconnect each is made again with its filter, from its cursor.
	sc.drop()
	sc = ss.accept(t)
	byFilter := map[string]clientFrame{}
	for range subs {
		f := sc.expect("subscribe")
		byFilter[f.Filter] = f
	}
	for _, s := range subs {
		f, ok := byFilter[s.opts.Filter]
		if !ok || f.Labels != s.opts.Labels || f.Since != s.name+"-1" {
			t.Fatalf("%s: resubscribe frames %v, want filter %q, labels %q, since %s-1", s.name, byFilter, s.opts.Filter, s.opts.Labels, s.name)
		}
		sc.reply(f.Ref, canonicalReply(f, s.labels, s.filter))
	}
	routes(sc, "2")

	// Close unsubscribes with the canonical filter.
	closed := make(chan error, 1)
	go func() { closed <- subs[1].sub.Close() }()
	f := sc.expect("unsubscribe")
	if f.Filter != subs[1].filter || f.Labels != "" {
		t.Errorf("unsubscribe frame %s, want filter %q", f.Raw, subs[1].filter)
	}
	sc.reply(f.Ref, map[string]any{})
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	// An error frame ends only the subscription of its filter.
	sc.send(map[string]any{"type": "error", "topic": topic, "labels": subs[2].labels, "filter": subs[2].filter,
		"problem": map[string]any{"type": tandem.ProblemBase + "forbidden", "title": "Forbidden", "status": 403}})
	if err := endedSub(t, subs[2].sub); !errors.Is(err, tandem.ErrForbidden) {
		t.Errorf("small-prod ended with %v, want ErrForbidden", err)
	}
	sc.send(filteredEvent(topic, "", "", "all-3", "all-3"))
	if ev := next(t, subs[0].sub); ev.Resource == nil || ev.Resource.Id != "all-3" {
		t.Errorf("all got %s after the others ended", describe(ev))
	}
}

// TestFilterScriptedRefused: a subscribe reply refusing the filter fails
// Subscribe (and Mirror) with the problem, whose detail names the position.
func TestFilterScriptedRefused(t *testing.T) {
	tests := []struct {
		name      string
		subscribe func(*tandem.Conn) error
	}{
		{"Subscribe", func(conn *tandem.Conn) error {
			_, err := conn.Subscribe(testContext(t), tandem.CollectionTopic("orders"), &tandem.SubscribeOptions{Filter: "data.qty >"})
			return err
		}},
		{"Mirror", func(conn *tandem.Conn) error {
			_, err := conn.Mirror(testContext(t), "orders", &tandem.MirrorOptions{Filter: "data.qty >"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newScriptServer(t)
			conn := connect(t, newClient(t, ss.URL))
			sc := ss.accept(t)
			done := make(chan error, 1)
			go func() { done <- tt.subscribe(conn) }()
			f := sc.expect("subscribe")
			if f.Filter != "data.qty >" {
				t.Fatalf("subscribe frame %s lacks the filter", f.Raw)
			}
			detail := "filter: position 11: expected a value (a string, number, true, false or null), found end of the expression"
			sc.replyProblem(f.Ref, map[string]any{"type": tandem.ProblemBase + "invalid-request", "title": "The request is invalid", "status": 400, "detail": detail})
			var pe *tandem.ProblemError
			if err := <-done; !errors.As(err, &pe) || pe.Problem.Status != 400 || !strings.Contains(err.Error(), "position 11") {
				t.Fatalf("err = %v, want a 400 *ProblemError naming position 11", err)
			}
		})
	}
}

// ids returns the IDs of resources.
func ids(rs []client.Resource) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Id)
	}
	return out
}

// TestFilterMirrorLive: against the real server, a filtered Mirror holds
// only matching resources; one that starts matching enters it and one
// that stops matching leaves it, also after the server restarts under it
// (the SDK resubscribes with the filter).
func TestFilterMirrorLive(t *testing.T) {
	srv := StartServer(t)
	c := newClient(t, srv.URL)
	ctx := testContext(t)
	const coll = "orders"
	if err := c.EnsureCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	put(t, c, coll, "a", map[string]int{"qty": 5})
	put(t, c, coll, "b", map[string]int{"qty": 1})
	conn := connect(t, c)
	m, err := conn.Mirror(ctx, coll, &tandem.MirrorOptions{Filter: "data.qty>2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.Items()); !slices.Equal(got, []string{"a"}) || m.Filter() != "data.qty > 2" {
		t.Fatalf("after the snapshot: %v with filter %q, want [a] with the canonical filter", got, m.Filter())
	}
	steps := []struct {
		name string
		id   string
		qty  int
		want []string
	}{
		{"Enters", "b", 3, []string{"a", "b"}},
		{"Leaves", "a", 2, []string{"b"}},
		{"NeverMatches", "c", 0, []string{"b"}},
		// The server restarts here: the mirror resubscribes with its
		// filter, so e stays out, and the changes after c still arrive.
		{"StaysAfterRestart", "b", 4, []string{"b"}},
		{"NeverMatchesAfterRestart", "e", 1, []string{"b"}},
		{"CreatedMatching", "d", 9, []string{"b", "d"}},
		{"LeavesAgain", "b", 0, []string{"d"}},
	}
	for _, st := range steps {
		if st.name == "StaysAfterRestart" {
			srv.Stop(t)
			srv.Restart(t, "")
		}
		r := put(t, c, coll, st.id, map[string]int{"qty": st.qty})
		eventually(t, st.name, func() bool {
			if !slices.Equal(ids(m.Items()), st.want) {
				return false
			}
			got, ok := m.Get(st.id)
			return !ok || got.Revision == r.Revision
		})
	}
	// A collection.updated event reaches the filtered mirror too.
	if _, err := c.UpdateCollection(ctx, coll, map[string]any{"indexes": []any{map[string]any{"fields": []string{"data.qty"}}}}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "collection.updated", func() bool {
		col, ok := m.Collection()
		return ok && col.Indexes != nil && len(*col.Indexes) == 1
	})
	// The mirror agrees with a list of the same filter.
	items, _, err := c.List(ctx, coll, &tandem.ListOptions{Filter: "data.qty > 2"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the mirror to equal the list", func() bool { return slices.Equal(ids(m.Items()), ids(items)) })
}

// TestFilterListLive lists with filter and orderBy against the real
// server: every page size gives the same resources in the same order,
// Limit stops early, and bad expressions are *ProblemErrors naming the
// parameter and position.
func TestFilterListLive(t *testing.T) {
	srv := StartServer(t)
	c := newClient(t, srv.URL)
	ctx := testContext(t)
	const coll = "items"
	if err := c.EnsureCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		env := []string{"prod", "dev"}[i%2]
		if _, err := c.Put(ctx, coll, fmt.Sprintf("i%02d", i), map[string]int{"qty": i % 5}, map[string]string{"env": env}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		opts tandem.ListOptions
		want []string
	}{
		{"Filter", tandem.ListOptions{Filter: "data.qty > 2"}, []string{"i03", "i04", "i08", "i09"}},
		{"FilterOrderBy", tandem.ListOptions{Filter: "data.qty >= 3", OrderBy: "data.qty desc, id desc"}, []string{"i09", "i04", "i08", "i03"}},
		{"LabelsAndFilter", tandem.ListOptions{Labels: "env=prod", Filter: "data.qty < 2", OrderBy: "id desc"}, []string{"i10", "i06", "i00"}},
		{"Limit", tandem.ListOptions{OrderBy: "data.qty", Limit: 3}, []string{"i00", "i05", "i10"}},
		{"NoneMatch", tandem.ListOptions{Filter: `startsWith(id, "z")`}, nil},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("%s/PageSize%d", tt.name, size), func(t *testing.T) {
				o := tt.opts
				o.PageSize = size
				items, rev, err := c.List(ctx, coll, &o)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(items); !slices.Equal(got, tt.want) || rev < 12 {
					t.Fatalf("List = %v at revision %d, want %v", got, rev, tt.want)
				}
				pages := 0
				for page, err := range c.Pages(ctx, coll, &o) {
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if size > 0 && len(page.Items) > size {
						t.Fatalf("page of %d items, want at most %d", len(page.Items), size)
					}
				}
				if size == 1 && len(tt.want) > 1 && pages < len(tt.want) {
					t.Errorf("%d pages of 1 for %d items", pages, len(tt.want))
				}
			})
		}
	}

	bad := []struct {
		name string
		opts tandem.ListOptions
		want string
	}{
		{"ErrFilterSyntax", tandem.ListOptions{Filter: "data.qty >"}, "query filter: position 11"},
		{"ErrFilterField", tandem.ListOptions{Filter: "qty > 1"}, `unknown field "qty"`},
		{"ErrOrderBy", tandem.ListOptions{OrderBy: "data.qty sideways"}, "query orderBy: position 10"},
		{"ErrPageToken", tandem.ListOptions{PageToken: "bogus"}, "pageToken"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.List(ctx, coll, &tt.opts)
			var pe *tandem.ProblemError
			if !errors.As(err, &pe) || pe.Problem.Status != 400 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a 400 naming %q", err, tt.want)
			}
		})
	}
	if _, _, err := c.List(ctx, "nope", &tandem.ListOptions{Filter: "data.qty > 2"}); !errors.Is(err, tandem.ErrNotFound) {
		t.Fatalf("missing collection: %v, want ErrNotFound", err)
	}
}
