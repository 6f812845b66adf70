package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	benchpkg "github.com/tandemhq/tandem/internal/bench"
)

// runBench runs `tandem bench` in-process against s with --json and
// returns its results. Workers stay in this process (--procs 1): the test
// binary cannot be re-executed as `tandem bench worker`; the CI smoke step
// covers worker processes with the real binary.
func runBench(t *testing.T, s *testServer, args ...string) []benchpkg.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	full := append([]string{"bench"}, args...)
	full = append(full, "--url", s.URL, "--json", "--procs", "1", "--source-addrs", "4", "--fail-on-errors")
	if err := run(ctx, full, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("tandem %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(full, " "), err, stdout.String(), stderr.String())
	}
	var results []benchpkg.Result
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("bench output is not JSON: %v\n%s", err, stdout.String())
	}
	return results
}

func TestBenchScenarios(t *testing.T) {
	// --webhook-allow-private: the webhooks scenario's receiver is on loopback.
	s := startServer(t, "--webhook-allow-private")
	t.Run("Fanout", func(t *testing.T) {
		for _, pub := range []string{"rest", "ws"} {
			t.Run(pub, func(t *testing.T) {
				rs := runBench(t, s, "fanout", "--subscribers", "20", "--rate", "20", "--duration", "1s", "--drain", "1s", "--publish", pub)
				if len(rs) != 1 {
					t.Fatalf("got %d results", len(rs))
				}
				r := rs[0]
				if r.Publishes != 20 || r.Connections != 20 {
					t.Errorf("publishes %d, connections %d; want 20 and 20", r.Publishes, r.Connections)
				}
				if r.ExpectedDeliveries != 400 || r.Deliveries != 400 || r.Missing != 0 {
					t.Errorf("deliveries %d of %d (missing %d), want 400 of 400", r.Deliveries, r.ExpectedDeliveries, r.Missing)
				}
				if r.Latency == nil || r.Latency.Count != r.Deliveries || r.Latency.MaxMS <= 0 || r.Latency.P50MS > r.Latency.P99MS {
					t.Errorf("latency summary %+v does not describe %d deliveries", r.Latency, r.Deliveries)
				}
				if r.PublishLatency == nil || r.PublishLatency.Count != r.Publishes || r.PublishLatency.P50MS > r.PublishLatency.MaxMS {
					t.Errorf("publish reply times %+v do not describe %d publishes", r.PublishLatency, r.Publishes)
				}
				if r.DeliveryWindowS < r.DurationS || r.DeliveriesPerSec <= 0 || r.DeliveriesPerSec > r.DeliveriesPerSecPublishWindow {
					t.Errorf("%.1f deliveries/s over %.3f s, %.1f/s over the %.3f s publish window; want the whole window at least the publish window",
						r.DeliveriesPerSec, r.DeliveryWindowS, r.DeliveriesPerSecPublishWindow, r.DurationS)
				}
				if r.Server == nil || r.Server.CPUPerDeliveryUS <= 0 {
					t.Errorf("server report %+v lacks the CPU per delivery", r.Server)
				}
			})
		}
		t.Run("NoSubscribers", func(t *testing.T) {
			for _, pub := range []string{"rest", "ws"} {
				r := runBench(t, s, "fanout", "--subscribers", "0", "--rate", "20", "--duration", "500ms", "--publish", pub, "--publishers", "2")[0]
				if r.Publishes != 10 || r.Connections != 0 || r.Deliveries != 0 || r.ExpectedDeliveries != 0 {
					t.Errorf("%s: publishes %d, connections %d, deliveries %d of %d; want 10 publishes to nobody", pub, r.Publishes, r.Connections, r.Deliveries, r.ExpectedDeliveries)
				}
				if r.PublishLatency == nil || r.PublishLatency.Count != 10 || r.PublishLatency.MaxMS <= 0 {
					t.Errorf("%s: publish reply times %+v, want 10", pub, r.PublishLatency)
				}
			}
		})
	})
	t.Run("Connections", func(t *testing.T) {
		r := runBench(t, s, "connections", "--connections", "100", "--settle", "100ms")[0]
		if r.Connections != 100 || r.ConnectsPerSec <= 0 {
			t.Errorf("connections %d at %.1f/s, want 100", r.Connections, r.ConnectsPerSec)
		}
		if r.Server == nil || r.Server.Before.RSSBytes <= 0 || r.Server.After.WSConnections < 100 {
			t.Errorf("server report %+v lacks the RSS or the open connections", r.Server)
		}
	})
	t.Run("REST", func(t *testing.T) {
		rs := runBench(t, s, "rest", "--op", "get,create", "--clients", "4", "--duration", "500ms", "--warmup", "100ms", "--collection", "benchtest")
		if len(rs) != 2 {
			t.Fatalf("got %d results, want get and create", len(rs))
		}
		for _, r := range rs {
			if r.Requests == 0 || r.RequestLatency == nil || r.RequestLatency.Count != r.Requests {
				t.Errorf("%v: %d requests, latency %+v", r.Params["op"], r.Requests, r.RequestLatency)
			}
		}
		// The resources the bench created are real: list them through the
		// spec-validating client.
		resp, err := s.HTTP.Get(s.URL + "/v1/collections/benchtest/resources?limit=5")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&list) != nil || len(list.Items) == 0 {
			t.Errorf("listing the created resources: HTTP %d, %d items", resp.StatusCode, len(list.Items))
		}
	})
	t.Run("WritesToEvents", func(t *testing.T) {
		r := runBench(t, s, "writes-to-events", "--rate", "50", "--duration", "1s", "--subscribers", "2", "--writers", "4", "--drain", "1s")[0]
		if r.Requests != 50 || r.Deliveries != 100 || r.Missing != 0 {
			t.Errorf("writes %d, deliveries %d (missing %d); want 50 writes seen by 2 subscribers", r.Requests, r.Deliveries, r.Missing)
		}
		if r.Latency == nil || r.Latency.Count != r.Deliveries {
			t.Errorf("latency %+v", r.Latency)
		}
	})
	t.Run("Webhooks", func(t *testing.T) {
		t.Run("rate", func(t *testing.T) {
			r := runBench(t, s, "webhooks", "--rate", "50", "--duration", "1s", "--writers", "4", "--drain", "2s")[0]
			if r.Requests != 50 || r.ExpectedDeliveries != 50 || r.Deliveries != 50 || r.Missing != 0 {
				t.Errorf("writes %d, deliveries %d of %d (missing %d); want 50 writes delivered", r.Requests, r.Deliveries, r.ExpectedDeliveries, r.Missing)
			}
			if r.Latency == nil || r.Latency.Count != r.Deliveries || r.Latency.MaxMS <= 0 || r.Latency.P50MS > r.Latency.P90MS || r.Latency.P90MS > r.Latency.P99MS {
				t.Errorf("latency summary %+v does not describe %d deliveries", r.Latency, r.Deliveries)
			}
			if r.RequestLatency == nil || r.RequestLatency.Count != 50 {
				t.Errorf("write latency %+v", r.RequestLatency)
			}
			// maxBatch 1: one request per event received.
			if r.WebhookRequests != r.Deliveries+r.Duplicates {
				t.Errorf("%d webhook requests for %d events and %d duplicates", r.WebhookRequests, r.Deliveries, r.Duplicates)
			}
		})
		t.Run("throughput", func(t *testing.T) {
			// The same collection again: the new webhook starts at its head,
			// so the rate run's events are not delivered to it.
			r := runBench(t, s, "webhooks", "--rate", "0", "--events", "300", "--max-batch", "50", "--writers", "4", "--drain", "2s")[0]
			if r.Params["mode"] != "throughput" || r.Requests != 300 || r.ExpectedDeliveries != 300 || r.Deliveries != 300 || r.Missing != 0 {
				t.Errorf("mode %v, writes %d, deliveries %d of %d (missing %d); want 300 of 300", r.Params["mode"], r.Requests, r.Deliveries, r.ExpectedDeliveries, r.Missing)
			}
			if r.WebhookRequests < 6 || r.WebhookRequests > 300 || r.DeliveriesPerSec <= 0 || r.WebhookRequestsPerSec <= 0 || r.DurationS <= 0 {
				t.Errorf("%d webhook requests (%.1f/s), %.1f events/s in %.3f s; want 6 to 300 requests of up to 50 events", r.WebhookRequests, r.WebhookRequestsPerSec, r.DeliveriesPerSec, r.DurationS)
			}
			if r.Latency != nil {
				t.Errorf("throughput mode reports a write → webhook latency: %+v", r.Latency)
			}
		})
	})
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"NoScenario", []string{"bench"}, "no scenario"},
		{"UnknownScenario", []string{"bench", "nope"}, "unknown scenario"},
		{"RemoteHostRefused", []string{"bench", "rest", "--url", "http://192.0.2.1:8080"}, "loopback"},
		{"BadOp", []string{"bench", "rest", "--url", "http://127.0.0.1:1", "--op", "delete"}, "use get or create"},
		{"BadMaxBatch", []string{"bench", "webhooks", "--url", "http://127.0.0.1:1", "--max-batch", "101"}, "use 1 to 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, func(string) string { return "" }, &out, &errb)
			if err == nil {
				t.Fatalf("tandem %v succeeded", tc.args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
