package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// TestPostgresConnectionsKilled: every connection a node holds to
// PostgreSQL — its pool and its LISTEN connection — is terminated
// (pg_terminate_backend) three times, then the database refuses
// connections for a while (an outage), while writers run and a WebSocket
// client follows the collection. A write caught by a cut or the outage
// fails with a 503 problem, never a 500 and never a 2xx that is then
// missing; during the outage /readyz answers 503 naming the store; the
// node recovers without a restart; the change log has no gap; and the
// subscriber, connected throughout, receives every committed change
// exactly once, in revision order.
func TestPostgresConnectionsKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test; not in -short")
	}
	bin := buildTandem(t)
	requirePostgresStore(t, bin)
	dsn := freshPostgres(t)
	u, _ := url.Parse(dsn)
	dbName := strings.TrimPrefix(u.Path, "/")
	s := startProc(t, bin, "--store", dsn)
	const coll, topic = "pgcut", "collections/pgcut/resources"
	cr, err := s.Client.CreateCollectionWithResponse(context.Background(), nil, client.CollectionCreate{Name: coll})
	if err != nil || cr.StatusCode() != 201 {
		t.Fatalf("create collection: %v", err)
	}
	cursor0 := s.poll(t, topic, "", "1ms").Cursor
	follower := s.dial(t)
	follower.subscribe(topic, map[string]any{"since": cursor0})

	var (
		mu      sync.Mutex
		acks    []ackedWrite
		refused atomic.Int64
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-k%d", g, i%5)
				req, _ := http.NewRequest("PUT", s.URL+"/v1/collections/"+coll+"/resources/"+id, strings.NewReader(fmt.Sprintf(`{"data":{"g":%d,"i":%d}}`, g, i)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.HTTP.Do(req)
				if err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200, 201:
					var r client.Resource
					if err := json.Unmarshal(body, &r); err != nil {
						t.Errorf("writer %d: %v", g, err)
						return
					}
					mu.Lock()
					acks = append(acks, ackedWrite{Op: "put", ID: id, Rev: r.Revision, Data: canonJSON(r.Data)})
					mu.Unlock()
				case 503:
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				default:
					t.Errorf("writer %d: PUT %s → %d %s", g, id, resp.StatusCode, body)
					return
				}
			}
		}()
	}

	admin, err := pgx.Connect(context.Background(), postgresAdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for cut := 0; cut < 3; cut++ {
		time.Sleep(400 * time.Millisecond)
		var n int
		if err := admin.QueryRow(context.Background(),
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName).Scan(&n); err != nil {
			t.Fatalf("terminate backends: %v", err)
		}
		if n == 0 {
			t.Fatalf("cut %d: the node held no connection to %s", cut, dbName)
		}
		t.Logf("cut %d: terminated %d connections", cut, n)
	}
	// An outage: the database refuses new connections and the node's are
	// cut. Readiness says so and writes answer 503 until it is back.
	exec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`ALTER DATABASE ` + dbName + ` ALLOW_CONNECTIONS false`)
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + dbName + `'`)
	waitReadyz(t, s.URL, 503, `"store":"unavailable"`)
	if r, err := s.Client.ReplaceResourceWithResponse(context.Background(), coll, "down", nil, client.ResourceReplace{Data: json.RawMessage(`{}`)}); err != nil || r.StatusCode() != 503 {
		t.Fatalf("write during the outage: %v %d %s", err, r.StatusCode(), r.Body)
	}
	exec(`ALTER DATABASE ` + dbName + ` ALLOW_CONNECTIONS true`)
	// The node serves again without a restart.
	waitReadyz(t, s.URL, 200, `"store":"ok"`)
	time.Sleep(400 * time.Millisecond)
	stop()
	wg.Wait()
	if t.Failed() {
		return
	}
	last := s.put(t, coll, "after", `{"after":true}`, nil)
	acks = append(acks, ackedWrite{Op: "put", ID: "after", Rev: last.Revision, Data: canonJSON(last.Data)})

	log, storeRev := readChangeLog(t, s.testServer, coll, cursor0)
	var seen []logEntry
	for len(seen) == 0 || seen[len(seen)-1].Rev < last.Revision {
		e := entryFromFrame(follower.nextOfType("event", 20*time.Second))
		if n := len(seen); n > 0 && e.Rev <= seen[n-1].Rev {
			t.Fatalf("subscriber got revision %d after %d", e.Rev, seen[n-1].Rev)
		}
		seen = append(seen, e)
	}
	verifyCrashLog(t, 0, log, cr.JSON201.Revision, storeRev, acks, seen)
	if len(seen) != len(log) {
		t.Fatalf("subscriber received %d changes, the log has %d", len(seen), len(log))
	}
	t.Logf("%d writes acknowledged, %d refused with 503 during the cuts and the outage; log and subscriber agree on %d changes", len(acks), refused.Load(), len(log))
	s.stopGraceful(t)
}

// waitReadyz polls /readyz until it answers status with a body containing
// want.
func waitReadyz(t *testing.T, base string, status int, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == status && strings.Contains(string(b), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz = %d %s, want %d with %s", resp.StatusCode, b, status, want)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("/readyz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
