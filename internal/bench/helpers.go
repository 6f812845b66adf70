// Small helpers the scenarios share: collection setup, the server
// report, per-worker counts, option defaults and rounding.

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// ensureCollection creates the collection unless it exists.
func ensureCollection(ctx context.Context, base *url.URL, token, name string) error {
	c := newHTTPConn(base, nil)
	defer c.Close()
	body, _ := json.Marshal(map[string]string{"name": name})
	status, reply, err := c.Do(ctx, "POST", "/v1/collections", "application/json", body, token)
	if err != nil {
		return fmt.Errorf("creating collection %q: %w", name, err)
	}
	if status != 201 && status != 409 {
		return fmt.Errorf("creating collection %q: HTTP %d: %s", name, status, reply)
	}
	return nil
}

// serverReport compares two samples; conns > 0 adds per-connection
// figures, secs > 0 (the time between cpu0 and after) the server's CPU use.
func serverReport(before, after ServerStats, conns int, cpu0 ServerStats, secs float64) *ServerReport {
	r := &ServerReport{Before: before, After: after}
	if conns > 0 {
		n := float64(conns)
		r.RSSPerConnBytes = math1(float64(after.RSSBytes-before.RSSBytes) / n)
		r.HeapPerConnBytes = math1(float64(after.HeapInuseBytes-before.HeapInuseBytes) / n)
		r.StackPerConnBytes = math1(float64(after.StackBytes-before.StackBytes) / n)
		r.GoroutinesPerConn = float64(after.Goroutines-before.Goroutines) / n
	}
	if secs > 0 && after.CPUSeconds > cpu0.CPUSeconds {
		r.CPUSecondsDuringLoad = round3(after.CPUSeconds - cpu0.CPUSeconds)
		r.ServerCPUUtilisationPc = math1(100 * r.CPUSecondsDuringLoad / secs)
	}
	return r
}

// perWorker divides a total dial concurrency among the workers.
func perWorker(total int, c Common, n int) int {
	per := c.PerProc
	if per <= 0 {
		per = 9000
	}
	procs := c.Procs
	if procs <= 0 {
		procs = (n + per - 1) / per
	}
	return max(1, total/max(1, procs))
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func defInt(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func defFloat(v, d float64) float64 {
	if v <= 0 {
		return d
	}
	return v
}

func defDur(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

func ptr[T any](v T) *T { return &v }

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func math1(v float64) float64 { return float64(int64(v*10)) / 10 }
