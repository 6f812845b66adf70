package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// logEntry is one change of the collection topic as a client sees it.
type logEntry struct {
	Rev    int64
	ID     string
	Event  string // resource.created, resource.updated, resource.deleted
	Data   string // canonical JSON
	Cursor string
}

func (e logEntry) String() string {
	return fmt.Sprintf("rev %d %s %s %s", e.Rev, e.Event, e.ID, e.Data)
}

// canonJSON re-encodes raw JSON with sorted keys so equal values compare equal.
func canonJSON(raw []byte) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "invalid JSON: " + string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func entryFromFrame(f map[string]any) logEntry {
	r := f["resource"].(map[string]any)
	data, _ := json.Marshal(r["data"])
	return logEntry{Rev: int64(r["revision"].(float64)), ID: r["id"].(string), Event: f["event"].(string), Data: canonJSON(data), Cursor: f["cursor"].(string)}
}

// ackedWrite is a write that got a 2xx reply.
type ackedWrite struct {
	Op   string // put, patch, delete
	ID   string
	Rev  int64  // put/patch: the new revision; delete: the revision it deleted (If-Match)
	Data string // put/patch: canonical data of the reply
}

// TestCrashRecovery kills `tandem serve` with SIGKILL in the middle of
// concurrent writes, several times, and restarts it on the same data. After
// every restart: every write that got a 2xx is in the change log with its
// revision, the log has no gap, every event a subscriber saw before the
// crash is in the log, the stored state equals the log's last word on each
// resource, and a subscriber resuming from its last cursor receives exactly
// the committed changes after it.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it repeatedly; not in -short")
	}
	bin := buildTandem(t)
	for _, st := range storeVariants(bin) {
		t.Run(st.name, func(t *testing.T) {
			crashRounds(t, bin, st.args(t))
		})
	}
}

func crashRounds(t *testing.T, bin string, args []string) {
	const (
		rounds  = 5
		writers = 6
		coll    = "crash"
		topic   = "collections/" + coll + "/resources"
	)
	s := startProc(t, bin, args...)
	cr, err := s.Client.CreateCollectionWithResponse(context.Background(), nil, client.CollectionCreate{Name: coll})
	if err != nil || cr.StatusCode() != 201 {
		t.Fatalf("create collection: %v %s", err, cr.Body)
	}
	collRev := cr.JSON201.Revision
	// The position just after the collection's creation: the whole log follows it.
	cursor0 := s.poll(t, topic, "", "1ms").Cursor

	var (
		mu   sync.Mutex
		acks []ackedWrite
	)
	record := func(a ackedWrite) {
		mu.Lock()
		acks = append(acks, a)
		mu.Unlock()
	}
	var seen []logEntry // every event the subscriber received, in order
	lastCursor, lastRev := cursor0, collRev

	follower := s.dial(t)
	follower.subscribe(topic, map[string]any{"since": cursor0})
	for round := 0; round < rounds; round++ {
		var roundAcks atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashWriter(t, s.testServer, coll, g, round, func(a ackedWrite) { record(a); roundAcks.Add(1) })
			}()
		}
		// Kill while the writers are in full flow: after some acks, at a random moment.
		deadline := time.Now().Add(20 * time.Second)
		for roundAcks.Load() < 40 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
		s.kill(t)
		wg.Wait()
		if roundAcks.Load() < 40 {
			t.Fatalf("round %d: only %d writes acknowledged in 20s", round, roundAcks.Load())
		}

		// What the subscriber saw before the crash, in order, without duplicates.
		select {
		case <-follower.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("subscriber connection survived SIGKILL")
		}
		for _, f := range drainFrames(follower) {
			if f["type"] != "event" {
				continue
			}
			e := entryFromFrame(f)
			if e.Rev <= lastRev {
				t.Fatalf("round %d: subscriber got revision %d after %d", round, e.Rev, lastRev)
			}
			seen = append(seen, e)
			lastCursor, lastRev = e.Cursor, e.Rev
		}

		s = startProc(t, bin, args...) // same data, new port
		log, storeRev := readChangeLog(t, s.testServer, coll, cursor0)
		mu.Lock()
		verifyCrashLog(t, round, log, collRev, storeRev, acks, seen)
		mu.Unlock()
		verifyState(t, s.testServer, coll, log)

		// A subscriber resuming from its last cursor gets exactly the rest.
		follower = s.dial(t)
		body := follower.subscribe(topic, map[string]any{"since": lastCursor})
		if body["start"] != "since" || body["cursor"] != lastCursor {
			t.Fatalf("resume reply = %v", body)
		}
		var want []logEntry
		for _, e := range log {
			if e.Rev > lastRev {
				want = append(want, e)
			}
		}
		for i, w := range want {
			got := entryFromFrame(follower.nextOfType("event", 10*time.Second))
			if got.Rev != w.Rev || got.ID != w.ID || got.Event != w.Event || got.Data != w.Data {
				t.Fatalf("round %d: resumed event %d = %v, want %v", round, i, got, w)
			}
			seen = append(seen, got)
			lastCursor, lastRev = got.Cursor, got.Rev
		}
		// Nothing more: a ping's reply comes with no event before it.
		if r := follower.request(map[string]any{"type": "ping"}); r["ok"] != true {
			t.Fatalf("ping: %v", r)
		}
		for _, f := range follower.pending {
			if f["type"] == "event" {
				t.Fatalf("round %d: extra event after the committed log: %v", round, f)
			}
		}
		follower.pending = nil
		t.Logf("round %d: %d writes acknowledged, log at revision %d, subscriber resumed %d events", round, roundAcks.Load(), storeRev, len(want))
	}
	s.stopGraceful(t)
}

// crashWriter writes until the server goes away: creates, replaces, merge
// patches and conditional deletes of its own resources, recording every
// write that got a 2xx. Any other status is a failure.
func crashWriter(t *testing.T, s *testServer, coll string, g, round int, record func(ackedWrite)) {
	revs := map[string]int64{}
	for i := 0; ; i++ {
		id := fmt.Sprintf("w%d-r%d-k%d", g, round, i%6)
		prev, exists := revs[id]
		op := "put"
		if exists {
			switch n := rand.IntN(10); {
			case n < 3:
				op = "patch"
			case n < 5:
				op = "delete"
			}
		}
		var req *http.Request
		path := s.URL + "/v1/collections/" + coll + "/resources/" + id
		switch op {
		case "put":
			req, _ = http.NewRequest("PUT", path, strings.NewReader(fmt.Sprintf(`{"data":{"g":%d,"round":%d,"i":%d},"labels":{"w":"%d"}}`, g, round, i, g)))
			req.Header.Set("Content-Type", "application/json")
		case "patch":
			req, _ = http.NewRequest("PATCH", path, strings.NewReader(fmt.Sprintf(`{"data":{"p":%d}}`, i)))
			req.Header.Set("Content-Type", "application/merge-patch+json")
		case "delete":
			req, _ = http.NewRequest("DELETE", path, nil)
			req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(prev, 10)))
		}
		resp, err := s.HTTP.Do(req)
		if err != nil {
			return // the server was killed: this write's fate is unknown
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return
		}
		switch resp.StatusCode {
		case 200, 201:
			var r client.Resource
			if err := json.Unmarshal(body, &r); err != nil {
				t.Errorf("writer %d: %s %s: %v", g, op, id, err)
				return
			}
			revs[id] = r.Revision
			record(ackedWrite{Op: op, ID: id, Rev: r.Revision, Data: canonJSON(r.Data)})
		case 204:
			delete(revs, id)
			record(ackedWrite{Op: op, ID: id, Rev: prev})
		default:
			t.Errorf("writer %d: %s %s → %d %s", g, op, id, resp.StatusCode, body)
			return
		}
	}
}

// drainFrames returns every frame a closed client had received.
func drainFrames(w *wsClient) []map[string]any {
	out := append([]map[string]any(nil), w.pending...)
	w.pending = nil
	for {
		select {
		case f := <-w.frames:
			out = append(out, f)
		default:
			return out
		}
	}
}

// readChangeLog long-polls a collection topic from since until nothing is
// left (no writers run meanwhile) and returns its changes and the store
// revision read afterwards.
func readChangeLog(t *testing.T, s *testServer, coll, since string) ([]logEntry, int64) {
	t.Helper()
	topic := "collections/" + coll + "/resources"
	var out []logEntry
	wait, limit := "1ms", 1000
	for cur := since; ; {
		r, err := s.Client.PollChangesWithResponse(context.Background(), &client.PollChangesParams{Topic: topic, Since: &cur, Wait: &wait, Limit: &limit})
		if err != nil || r.StatusCode() != 200 {
			t.Fatalf("read change log: %v %d %s", err, r.StatusCode(), r.Body)
		}
		if len(r.JSON200.Events) == 0 {
			break
		}
		for _, ev := range r.JSON200.Events {
			if ev.Resource == nil {
				t.Fatalf("change without resource: %+v", ev)
			}
			out = append(out, logEntry{Rev: ev.Resource.Revision, ID: ev.Resource.Id, Event: string(ev.Event), Data: canonJSON(ev.Resource.Data), Cursor: ev.Cursor})
		}
		cur = r.JSON200.Cursor
	}
	lim := 1
	l, err := s.Client.ListResourcesWithResponse(context.Background(), coll, &client.ListResourcesParams{Limit: &lim})
	if err != nil || l.StatusCode() != 200 {
		t.Fatalf("list: %v %s", err, l.Body)
	}
	return out, l.JSON200.Revision
}

// verifyCrashLog checks the recovered change log against what clients were told.
func verifyCrashLog(t *testing.T, round int, log []logEntry, collRev, storeRev int64, acks []ackedWrite, seen []logEntry) {
	t.Helper()
	// No gap: revisions run from just after the collection's creation to the
	// store's revision, one by one.
	for i, e := range log {
		if e.Rev != collRev+1+int64(i) {
			t.Fatalf("round %d: change log entry %d has revision %d, want %d (gap or reorder)", round, i, e.Rev, collRev+1+int64(i))
		}
	}
	if n := int64(len(log)); collRev+n != storeRev {
		t.Fatalf("round %d: change log ends at %d, store revision is %d", round, collRev+n, storeRev)
	}
	byRev := make(map[int64]logEntry, len(log))
	byID := map[string][]logEntry{}
	for _, e := range log {
		byRev[e.Rev] = e
		byID[e.ID] = append(byID[e.ID], e)
	}
	for _, a := range acks {
		switch a.Op {
		case "put", "patch":
			e, ok := byRev[a.Rev]
			if !ok || e.ID != a.ID || e.Event == "resource.deleted" || e.Data != a.Data {
				t.Fatalf("round %d: acknowledged %s of %s at revision %d (%s) is not in the log as such: %v (present %v)", round, a.Op, a.ID, a.Rev, a.Data, e, ok)
			}
		case "delete":
			var next *logEntry
			for _, e := range byID[a.ID] {
				if e.Rev > a.Rev {
					next = &e
					break
				}
			}
			if next == nil || next.Event != "resource.deleted" {
				t.Fatalf("round %d: acknowledged delete of %s (at revision %d) is not the next change in the log: %v", round, a.ID, a.Rev, next)
			}
		}
	}
	for _, e := range seen {
		if l, ok := byRev[e.Rev]; !ok || l.ID != e.ID || l.Event != e.Event || l.Data != e.Data {
			t.Fatalf("round %d: a subscriber received %v before the crash, but the log has %v (present %v)", round, e, l, ok)
		}
	}
}

// verifyState checks that the stored resources are exactly what the log
// says last about each ID.
func verifyState(t *testing.T, s *testServer, coll string, log []logEntry) {
	t.Helper()
	last := map[string]logEntry{}
	for _, e := range log {
		last[e.ID] = e
	}
	listed := map[string]client.Resource{}
	lim := 1000
	var token *string
	for {
		l, err := s.Client.ListResourcesWithResponse(context.Background(), coll, &client.ListResourcesParams{Limit: &lim, PageToken: token})
		if err != nil || l.StatusCode() != 200 {
			t.Fatalf("list: %v %s", err, l.Body)
		}
		for _, r := range l.JSON200.Items {
			listed[r.Id] = r
		}
		if l.JSON200.NextPageToken == nil || *l.JSON200.NextPageToken == "" {
			break
		}
		token = l.JSON200.NextPageToken
	}
	for id, e := range last {
		r, ok := listed[id]
		if e.Event == "resource.deleted" {
			if ok {
				t.Fatalf("%s was deleted at revision %d but is stored at revision %d", id, e.Rev, r.Revision)
			}
			continue
		}
		if !ok || r.Revision != e.Rev || canonJSON(r.Data) != e.Data {
			t.Fatalf("%s: log says %v, store has %+v (present %v)", id, e, r, ok)
		}
	}
	for id := range listed {
		if _, ok := last[id]; !ok {
			t.Fatalf("%s is stored but never appeared in the change log", id)
		}
	}
}
