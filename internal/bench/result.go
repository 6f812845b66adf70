package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Result is what one scenario run measured. Fields that do not apply to a
// scenario are zero and left out of the JSON.
type Result struct {
	Scenario string         `json:"scenario"`
	Params   map[string]any `json:"params"`
	// DurationS is the measured window in seconds.
	DurationS float64 `json:"durationS"`

	// Publishers and writers. PublishLatency is each publish's reply
	// time: request sent to reply received (HTTP status or WebSocket
	// reply frame), successful publishes only.
	Publishes       uint64   `json:"publishes,omitempty"`
	PublishesPerSec float64  `json:"publishesPerSec,omitempty"`
	PublishLatency  *Latency `json:"publishLatency,omitempty"`

	// Subscribers: deliveries received and their latency from the
	// timestamp in the payload to receipt. For fanout and
	// writes-to-events, DeliveriesPerSec counts over DeliveryWindowS, from
	// the first publish until the last delivery arrived (publishing plus
	// draining, at least DurationS); DeliveriesPerSecPublishWindow over the
	// publish window (DurationS) alone, which overstates the rate when
	// deliveries lag behind the publishes. For webhooks' throughput mode
	// DeliveriesPerSec is events/s over DurationS.
	ExpectedDeliveries            uint64   `json:"expectedDeliveries,omitempty"`
	Deliveries                    uint64   `json:"deliveries,omitempty"`
	DeliveryWindowS               float64  `json:"deliveryWindowS,omitempty"`
	DeliveriesPerSec              float64  `json:"deliveriesPerSec,omitempty"`
	DeliveriesPerSecPublishWindow float64  `json:"deliveriesPerSecPublishWindow,omitempty"`
	Missing                       int64    `json:"missing,omitempty"`
	Latency                       *Latency `json:"latency,omitempty"`

	// Webhooks: the requests the bench's receiver got, and the events
	// that arrived more than once (delivery is at least once, so they are
	// counted but are not errors).
	WebhookRequests       uint64  `json:"webhookRequests,omitempty"`
	WebhookRequestsPerSec float64 `json:"webhookRequestsPerSec,omitempty"`
	Duplicates            uint64  `json:"duplicates,omitempty"`

	// REST.
	Requests       uint64   `json:"requests,omitempty"`
	RequestsPerSec float64  `json:"requestsPerSec,omitempty"`
	RequestLatency *Latency `json:"requestLatency,omitempty"`

	// Connections.
	Connections    int      `json:"connections,omitempty"`
	ConnectsPerSec float64  `json:"connectsPerSec,omitempty"`
	ConnectLatency *Latency `json:"connectLatency,omitempty"`
	Processes      int      `json:"processes,omitempty"`

	// Presence: JoinLatency times each join from its dial to its reply;
	// MembersFull counts the members that saw the full member set,
	// FullSetS is when the last of them did (from the first dial),
	// FullSetAfterLastJoinMS the same from the last join's reply;
	// PresenceFrames and PresenceMembers count the presence frames all
	// members received and the member entries in them; PresenceWalks
	// time full paginated reads of GET /v1/channels/{ch}/presence.
	JoinLatency            *Latency       `json:"joinLatency,omitempty"`
	MembersFull            int            `json:"membersFull,omitempty"`
	FullSetS               float64        `json:"fullSetS,omitempty"`
	FullSetAfterLastJoinMS float64        `json:"fullSetAfterLastJoinMs,omitempty"`
	PresenceFrames         uint64         `json:"presenceFrames,omitempty"`
	PresenceMembers        uint64         `json:"presenceMembers,omitempty"`
	PresenceWalks          []PresenceWalk `json:"presenceWalks,omitempty"`

	// Server is the server's memory before and after, when sampled.
	Server *ServerReport `json:"server,omitempty"`

	// Errors counts failures by kind (HTTP status, dial error, …).
	Errors map[string]uint64 `json:"errors"`
}

// ServerReport compares server samples taken before and after the load.
type ServerReport struct {
	Before ServerStats `json:"before"`
	After  ServerStats `json:"after"`
	// Per-connection figures: (after − before) / connections.
	RSSPerConnBytes        float64 `json:"rssPerConnBytes,omitempty"`
	HeapPerConnBytes       float64 `json:"heapPerConnBytes,omitempty"`
	StackPerConnBytes      float64 `json:"stackPerConnBytes,omitempty"`
	GoroutinesPerConn      float64 `json:"goroutinesPerConn,omitempty"`
	CPUSecondsDuringLoad   float64 `json:"cpuSecondsDuringLoad,omitempty"`
	ServerCPUUtilisationPc float64 `json:"serverCpuUtilisationPercent,omitempty"`
	// Fanout: CPUSecondsDuringLoad (first publish to the end of the
	// drain) per delivery and per publish, in microseconds.
	CPUPerDeliveryUS float64 `json:"cpuPerDeliveryUs,omitempty"`
	CPUPerPublishUS  float64 `json:"cpuPerPublishUs,omitempty"`
}

func (r *Result) addError(kind string, n uint64) {
	if n == 0 {
		return
	}
	if r.Errors == nil {
		r.Errors = map[string]uint64{}
	}
	r.Errors[kind] += n
}

// ErrorCount is the total of Errors plus Missing deliveries.
func (r *Result) ErrorCount() uint64 {
	var n uint64
	for _, v := range r.Errors {
		n += v
	}
	if r.Missing > 0 {
		n += uint64(r.Missing)
	}
	return n
}

func perSec(n uint64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return math.Round(float64(n)/secs*10) / 10
}

// WriteTable prints results as a summary table: one column per run.
func WriteTable(w io.Writer, results []Result) error {
	type row struct {
		name string
		val  func(r Result) string
	}
	lat := func(f func(Result) *Latency, q func(Latency) float64) func(Result) string {
		return func(r Result) string {
			l := f(r)
			if l == nil || l.Count == 0 {
				return ""
			}
			return fmt.Sprintf("%.3f ms", q(*l))
		}
	}
	num := func(f func(Result) float64, unit string) func(Result) string {
		return func(r Result) string {
			v := f(r)
			if v == 0 {
				return ""
			}
			return strings.TrimSpace(fmt.Sprintf("%s %s", fmtNum(v), unit))
		}
	}
	rows := []row{
		{"duration", num(func(r Result) float64 { return r.DurationS }, "s")},
		{"publishes", num(func(r Result) float64 { return float64(r.Publishes) }, "")},
		{"publishes/s", num(func(r Result) float64 { return r.PublishesPerSec }, "")},
		{"publish reply p50", lat(func(r Result) *Latency { return r.PublishLatency }, func(l Latency) float64 { return l.P50MS })},
		{"publish reply p99", lat(func(r Result) *Latency { return r.PublishLatency }, func(l Latency) float64 { return l.P99MS })},
		{"publish reply max", lat(func(r Result) *Latency { return r.PublishLatency }, func(l Latency) float64 { return l.MaxMS })},
		{"deliveries expected", num(func(r Result) float64 { return float64(r.ExpectedDeliveries) }, "")},
		{"deliveries", num(func(r Result) float64 { return float64(r.Deliveries) }, "")},
		{"delivery window", num(func(r Result) float64 { return r.DeliveryWindowS }, "s")},
		{"deliveries/s", num(func(r Result) float64 { return r.DeliveriesPerSec }, "")},
		{"deliveries/s (publish window)", num(func(r Result) float64 { return r.DeliveriesPerSecPublishWindow }, "")},
		{"missing", func(r Result) string {
			if r.ExpectedDeliveries == 0 {
				return ""
			}
			return fmt.Sprint(r.Missing)
		}},
		{"duplicates", func(r Result) string {
			if r.WebhookRequests == 0 {
				return ""
			}
			return fmt.Sprint(r.Duplicates)
		}},
		{"webhook requests", num(func(r Result) float64 { return float64(r.WebhookRequests) }, "")},
		{"webhook requests/s", num(func(r Result) float64 { return r.WebhookRequestsPerSec }, "")},
		{"latency p50", lat(func(r Result) *Latency { return r.Latency }, func(l Latency) float64 { return l.P50MS })},
		{"latency p90", lat(func(r Result) *Latency { return r.Latency }, func(l Latency) float64 { return l.P90MS })},
		{"latency p95", lat(func(r Result) *Latency { return r.Latency }, func(l Latency) float64 { return l.P95MS })},
		{"latency p99", lat(func(r Result) *Latency { return r.Latency }, func(l Latency) float64 { return l.P99MS })},
		{"latency max", lat(func(r Result) *Latency { return r.Latency }, func(l Latency) float64 { return l.MaxMS })},
		{"requests", num(func(r Result) float64 { return float64(r.Requests) }, "")},
		{"requests/s", num(func(r Result) float64 { return r.RequestsPerSec }, "")},
		{"request p50", lat(func(r Result) *Latency { return r.RequestLatency }, func(l Latency) float64 { return l.P50MS })},
		{"request p95", lat(func(r Result) *Latency { return r.RequestLatency }, func(l Latency) float64 { return l.P95MS })},
		{"request p99", lat(func(r Result) *Latency { return r.RequestLatency }, func(l Latency) float64 { return l.P99MS })},
		{"request max", lat(func(r Result) *Latency { return r.RequestLatency }, func(l Latency) float64 { return l.MaxMS })},
		{"connections", num(func(r Result) float64 { return float64(r.Connections) }, "")},
		{"client processes", num(func(r Result) float64 { return float64(r.Processes) }, "")},
		{"connects/s", num(func(r Result) float64 { return r.ConnectsPerSec }, "")},
		{"connect p99", lat(func(r Result) *Latency { return r.ConnectLatency }, func(l Latency) float64 { return l.P99MS })},
		{"join p50", lat(func(r Result) *Latency { return r.JoinLatency }, func(l Latency) float64 { return l.P50MS })},
		{"join p99", lat(func(r Result) *Latency { return r.JoinLatency }, func(l Latency) float64 { return l.P99MS })},
		{"join max", lat(func(r Result) *Latency { return r.JoinLatency }, func(l Latency) float64 { return l.MaxMS })},
		{"members with the full set", num(func(r Result) float64 { return float64(r.MembersFull) }, "")},
		{"full set seen by all", num(func(r Result) float64 { return r.FullSetS }, "s")},
		{"  after the last join", num(func(r Result) float64 { return r.FullSetAfterLastJoinMS }, "ms")},
		{"presence frames", num(func(r Result) float64 { return float64(r.PresenceFrames) }, "")},
		{"presence member entries", num(func(r Result) float64 { return float64(r.PresenceMembers) }, "")},
		{"presence walk (limit 100)", walk(100)},
		{"presence walk (limit 1000)", walk(1000)},
		{"server RSS before", srv(func(s ServerReport) float64 { return float64(s.Before.RSSBytes) / (1 << 20) }, "MiB")},
		{"server RSS after", srv(func(s ServerReport) float64 { return float64(s.After.RSSBytes) / (1 << 20) }, "MiB")},
		{"server RSS/conn", srv(func(s ServerReport) float64 { return s.RSSPerConnBytes / 1024 }, "KiB")},
		{"server heap/conn", srv(func(s ServerReport) float64 { return s.HeapPerConnBytes / 1024 }, "KiB")},
		{"server stacks/conn", srv(func(s ServerReport) float64 { return s.StackPerConnBytes / 1024 }, "KiB")},
		{"server goroutines/conn", srv(func(s ServerReport) float64 { return s.GoroutinesPerConn }, "")},
		{"server CPU", srv(func(s ServerReport) float64 { return s.ServerCPUUtilisationPc }, "%")},
		{"server CPU/delivery", srv(func(s ServerReport) float64 { return s.CPUPerDeliveryUS }, "µs")},
		{"server CPU/publish", srv(func(s ServerReport) float64 { return s.CPUPerPublishUS }, "µs")},
		{"errors", func(r Result) string { return fmtErrors(r) }},
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"scenario"}
	for _, r := range results {
		header = append(header, r.Scenario+paramSuffix(r))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, rw := range rows {
		cells := []string{rw.name}
		any := false
		for _, r := range results {
			v := rw.val(r)
			if v != "" {
				any = true
			} else {
				v = "-"
			}
			cells = append(cells, v)
		}
		if any || rw.name == "errors" {
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
	}
	return tw.Flush()
}

// walk prints the paginated presence read with limit.
func walk(limit int) func(Result) string {
	return func(r Result) string {
		for _, w := range r.PresenceWalks {
			if w.Limit == limit && w.Err == "" {
				return fmt.Sprintf("%.3f ms (%d pages, %d members)", w.MS, w.Pages, w.Members)
			}
		}
		return ""
	}
}

func srv(f func(ServerReport) float64, unit string) func(Result) string {
	return func(r Result) string {
		if r.Server == nil {
			return ""
		}
		v := f(*r.Server)
		if v == 0 {
			return ""
		}
		return fmtNum(v) + " " + unit
	}
}

func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtErrors(r Result) string {
	if len(r.Errors) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Errors[k]))
	}
	return strings.Join(parts, " ")
}

// paramSuffix names the run in the table header, e.g. "(get)" for
// rest's op or "(throughput)" for webhooks' mode.
func paramSuffix(r Result) string {
	if op, ok := r.Params["op"]; ok {
		return fmt.Sprintf("(%v)", op)
	}
	if mode, ok := r.Params["mode"]; ok {
		return fmt.Sprintf("(%v)", mode)
	}
	return ""
}
