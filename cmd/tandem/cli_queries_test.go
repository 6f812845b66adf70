package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// jsonIDs returns the "id" of every JSON line of out, in order.
func jsonIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		_, rest, ok := strings.Cut(l, `"id":"`)
		id, _, ok2 := strings.Cut(rest, `"`)
		if !ok || !ok2 {
			t.Fatalf("not a resource line: %q", l)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestCLIGetQueries lists with --filter, --order-by and --limit, following
// pages (a collection larger than a page), and prints the server's
// refusals (400 naming the position, 422 needs-index naming the field) as
// errors that exit with 1.
func TestCLIGetQueries(t *testing.T) {
	s := startServer(t, "--max-scan", "1000")
	defer noViolations(t, s)
	s.mkcoll(t, "orders")
	for i := range 8 {
		s.put(t, "orders", fmt.Sprintf("o%d", i), fmt.Sprintf(`{"qty":%d,"status":%q}`, i%4, []string{"new", "paid"}[i%2]), map[string]string{"env": []string{"prod", "dev"}[i/4]})
	}
	// 1,100 resources: more than one page of 1,000, and more than the scan
	// budget for a filter no index serves.
	s.mkcoll(t, "big")
	for b := range 11 {
		ops := make([]batchOp, 0, 100)
		for i := range 100 {
			n := b*100 + i
			ops = append(ops, batchOp{"op": "put", "collection": "big", "id": fmt.Sprintf("b%04d", n), "data": map[string]int{"n": n}})
		}
		if resp, m, _ := s.batch(t, ops); resp.StatusCode != http.StatusOK {
			t.Fatalf("batch %d: %d %v", b, resp.StatusCode, m)
		}
	}
	many := func(from, to int) []string {
		var ids []string
		for n := from; n < to; n++ {
			ids = append(ids, fmt.Sprintf("b%04d", n))
		}
		return ids
	}

	tests := []struct {
		name    string
		args    []string
		want    []string // IDs printed, in order
		wantErr []string // substrings of the error
		usage   bool
	}{
		{"Filter", []string{"get", "orders", "--filter", "data.qty > 2"}, []string{"o3", "o7"}, nil, false},
		{"FilterOrderBy", []string{"get", "orders", "--filter", `data.status == "paid"`, "--order-by", "data.qty desc, id desc"}, []string{"o7", "o3", "o5", "o1"}, nil, false},
		{"FilterLabels", []string{"get", "--labels", "env=dev", "orders", "--filter", "data.qty < 2"}, []string{"o4", "o5"}, nil, false},
		{"Limit", []string{"get", "orders", "--order-by", "data.qty", "--limit", "3"}, []string{"o0", "o4", "o1"}, nil, false},
		{"Pages", []string{"get", "big", "--filter", "data.n >= 50"}, many(50, 1100), nil, false},
		{"PagesLimit", []string{"get", "big", "--order-by", "id desc", "--limit", "1002"}, reversed(many(98, 1100)), nil, false},
		{"ErrFilterSyntax", []string{"get", "orders", "--filter", "data.qty >"}, nil, []string{"(400)", "query filter: position 11"}, false},
		{"ErrFilterField", []string{"get", "orders", "--filter", "qty > 1"}, nil, []string{"(400)", `unknown field "qty"`}, false},
		{"ErrOrderBy", []string{"get", "orders", "--order-by", "data.qty sideways"}, nil, []string{"(400)", "query orderBy: position 10"}, false},
		{"ErrNeedsIndex", []string{"get", "big", "--filter", "data.n < 0"}, nil, []string{"(422)", "data.n"}, false},
		{"ErrFilterWithID", []string{"get", "orders", "o1", "--filter", "data.qty > 2"}, nil, []string{"apply to listing"}, true},
		{"ErrNegativeLimit", []string{"get", "orders", "--limit", "-1"}, nil, []string{"--limit"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := cliRun(t, s.URL, tt.args...)
			if tt.wantErr != nil {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("err = %v, want it to contain %q", err, w)
					}
				}
				var ue usageError
				if errors.As(err, &ue) != tt.usage {
					t.Fatalf("usage error = %v, want %v (%v)", !tt.usage, tt.usage, err)
				}
				if code := exitCode(err); !tt.usage && code != 1 {
					t.Fatalf("exit code %d, want 1", code)
				}
				if out != "" {
					t.Fatalf("printed %q before failing", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := jsonIDs(t, out); !slices.Equal(got, tt.want) {
				t.Fatalf("printed %d resources %v, want %d %v", len(got), head(got), len(tt.want), head(tt.want))
			}
		})
	}
}

// reversed returns ids in reverse order.
func reversed(ids []string) []string {
	slices.Reverse(ids)
	return ids
}

// head shortens a long list of IDs for a failure message.
func head(ids []string) []string {
	if len(ids) > 6 {
		return append(slices.Clip(ids[:3]), "…", ids[len(ids)-1])
	}
	return ids
}

// TestCLIWatchFilter: `tandem watch --filter` prints only matching
// resources, a resource that starts matching as resource.created and one
// that stops as resource.deleted; a bad filter fails naming its position.
func TestCLIWatchFilter(t *testing.T) {
	s := startServer(t)
	defer noViolations(t, s)
	s.mkcoll(t, "orders")
	s.put(t, "orders", "a", `{"qty":5}`, nil)
	s.put(t, "orders", "b", `{"qty":1}`, nil)
	w := startWatch(t, func(string) string { return "" }, "collections/orders/resources", "--filter", "data.qty>2", "--snapshot", "--url", s.URL)
	w.lines(t, 2)
	waitFor(t, w.stderr, "subscribed to collections/orders/resources where data.qty > 2")
	s.put(t, "orders", "b", `{"qty":3}`, nil) // enters
	s.put(t, "orders", "a", `{"qty":2}`, nil) // leaves
	s.put(t, "orders", "c", `{"qty":0}`, nil) // never matches
	s.put(t, "orders", "b", `{"qty":4}`, nil) // stays
	frames := w.lines(t, 5)
	want := []string{"resource.snapshot a", "synced", "resource.created b", "resource.deleted a", "resource.updated b"}
	if got := summarize(frames); !slices.Equal(got, want) {
		t.Fatalf("watch printed %v, want %v", got, want)
	}
	for _, f := range frames {
		if f["filter"] != "data.qty > 2" {
			t.Errorf("frame %v lacks the canonical filter", f)
		}
	}

	_, _, err := cliRun(t, s.URL, "watch", "collections/orders/resources", "--filter", "data.qty >>")
	if err == nil || !strings.Contains(err.Error(), "(400)") || !strings.Contains(err.Error(), "position 11") || exitCode(err) != 1 {
		t.Fatalf("watch with a bad filter: %v, want a 400 naming position 11, exit code 1", err)
	}
}
