package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	benchpkg "github.com/tandemhq/tandem/internal/bench"
)

const benchUsage = `Usage: tandem bench SCENARIO [flags]

Load-tests a Tandem server on this machine (loopback only) and prints a
summary table (--json for machines). Without --url it spawns its own
server (this binary, fresh SQLite data directory, --rate-limit 0, caps
off: --max-conns-per-ip 0 --max-subscriptions-per-principal 0
--max-subscriptions 0; for webhooks also --webhook-allow-private). A
server given with --url may need its caps raised for large runs: every
bench client comes from loopback. For webhooks it must run with
--webhook-allow-private, since the bench's receiver listens on 127.0.0.1.

Scenarios:
  fanout            N WebSocket subscribers on one channel, a publisher at R msg/s: deliveries/s
                    over the whole delivery window, delivery latency, publish reply time
  connections       open N idle WebSocket connections: connect rate, server memory per connection
  rest              GET one resource or create resources with C concurrent clients
  writes-to-events  REST creates at R/s, latency until the WebSocket event arrives
  webhooks          REST creates at R/s, latency until the webhook request arrives at the
                    bench's receiver; --rate 0: N events written with the webhook disabled,
                    then delivered after it is enabled (events/s, requests/s)
  presence          N members join one channel within a window, each following its presence:
                    joins ok/failed, join p50/p99, when every member saw the full member set,
                    presence frames received, latency of a paginated GET …/presence walk

Run "tandem bench SCENARIO -h" for the scenario's flags.
`

// bench runs `tandem bench`.
func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, benchUsage)
		if len(args) == 0 {
			return usageError{errors.New("no scenario given")}
		}
		return nil
	}
	scenario, args := args[0], args[1:]
	if scenario == "worker" {
		// Internal: a child process holding a share of the connections.
		return benchWorker(ctx, getenv("TANDEM_BENCH_CPUPROFILE"))
	}
	fs := flag.NewFlagSet("tandem bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		rawURL      = fs.String("url", "", "base URL of a running server (loopback only); default: spawn one")
		serverArgs  = fs.String("server-args", "", "extra flags for the spawned tandem serve, space-separated")
		jsonOut     = fs.Bool("json", false, "print the results as JSON instead of a table")
		token       = fs.String("token", getenv("TANDEM_BENCH_TOKEN"), "bearer token for a server with auth (env TANDEM_BENCH_TOKEN)")
		sourceAddrs = fs.Int("source-addrs", 16, "spread client sockets over this many loopback source addresses (127.0.0.2…)")
		procs       = fs.Int("procs", 0, "worker processes holding the WebSocket connections (0: one per --per-proc connections)")
		perProc     = fs.Int("per-proc", 9000, "connections per worker process when --procs is 0 (ulimit -n is per process)")
		failOnError = fs.Bool("fail-on-errors", false, "exit 1 if any error or missing delivery was counted")
		quiet       = fs.Bool("quiet", false, "no progress lines on stderr")
		cpuProfile  = fs.String("cpuprofile", "", "write the bench client's CPU profile to this file (go tool pprof)")
	)
	var run func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error)
	// spawnArgs are the scenario's own flags for a spawned server; --server-args
	// come after them, so they can override.
	var spawnArgs []string
	switch scenario {
	case "fanout":
		var o benchpkg.FanoutOptions
		fs.IntVar(&o.Subscribers, "subscribers", 10000, "WebSocket subscribers on the channel (0: publish with nobody listening, to time the publish replies alone)")
		fs.Float64Var(&o.Rate, "rate", 20, "publishes per second")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to publish")
		fs.StringVar(&o.Publish, "publish", "rest", "publish over rest or ws")
		fs.IntVar(&o.Publishers, "publishers", 0, "publishes in flight at most: REST connections carrying them (0: 4), or unanswered publish frames on the one WebSocket (0: no cap)")
		fs.StringVar(&o.Channel, "channel", "", "channel name (default: a fresh bench-fanout-… name)")
		fs.DurationVar(&o.Drain, "drain", 3*time.Second, "longest wait for the deliveries after the last publish")
		fs.IntVar(&o.Concurrency, "concurrency", 128, "parallel dials")
		run = func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error) {
			o.Common = c
			r, err := benchpkg.Fanout(ctx, srv, o)
			return []benchpkg.Result{r}, err
		}
	case "connections":
		var o benchpkg.ConnectionsOptions
		fs.IntVar(&o.Connections, "connections", 15000, "idle WebSocket connections to open")
		fs.IntVar(&o.Concurrency, "concurrency", 256, "parallel dials over all worker processes")
		fs.DurationVar(&o.Settle, "settle", 5*time.Second, "wait after the last connect before sampling server memory")
		run = func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error) {
			o.Common = c
			r, err := benchpkg.Connections(ctx, srv, o)
			return []benchpkg.Result{r}, err
		}
	case "rest":
		var o benchpkg.RESTOptions
		ops := fs.String("op", "get,create", "comma-separated operations to run in turn: get, create")
		fs.IntVar(&o.Clients, "clients", 64, "concurrent keep-alive clients")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per operation")
		fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured warm-up per operation")
		fs.StringVar(&o.Collection, "collection", "bench", "collection to use")
		run = func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error) {
			o.Common = c
			var out []benchpkg.Result
			for _, op := range strings.Split(*ops, ",") {
				o.Op = strings.TrimSpace(op)
				r, err := benchpkg.REST(ctx, srv, o)
				out = append(out, r)
				if err != nil {
					return out, err
				}
			}
			return out, nil
		}
	case "writes-to-events":
		var o benchpkg.WritesToEventsOptions
		fs.Float64Var(&o.Rate, "rate", 1000, "REST creates per second")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to write")
		fs.IntVar(&o.Subscribers, "subscribers", 1, "WebSocket subscribers of the collection")
		fs.IntVar(&o.Writers, "writers", 32, "concurrent REST connections carrying the paced writes")
		fs.StringVar(&o.Collection, "collection", "bench-w2e", "collection to write to")
		fs.DurationVar(&o.Drain, "drain", 2*time.Second, "longest wait for the events after the last write")
		run = func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error) {
			o.Common = c
			r, err := benchpkg.WritesToEvents(ctx, srv, o)
			return []benchpkg.Result{r}, err
		}
	case "webhooks":
		var o benchpkg.WebhooksOptions
		fs.Float64Var(&o.Rate, "rate", 100, "REST creates per second, each timed to its webhook request; 0: throughput mode (--events written with the webhook disabled, then delivered)")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to write (rate mode)")
		fs.IntVar(&o.Events, "events", 20000, "resources written before the webhook is enabled (throughput mode)")
		fs.IntVar(&o.MaxBatch, "max-batch", 1, "the webhook's maxBatch: events per request, 1 to 100")
		fs.IntVar(&o.Writers, "writers", 32, "concurrent REST connections carrying the writes")
		fs.DurationVar(&o.ReceiverDelay, "receiver-delay", 0, "how long the receiver waits before answering each request (a slow receiver)")
		fs.StringVar(&o.Collection, "collection", "bench-webhooks", "collection to write to")
		fs.DurationVar(&o.Drain, "drain", 5*time.Second, "longest wait without a new event after the writes (rate mode) or the enable (throughput mode)")
		spawnArgs = []string{"--webhook-allow-private"}
		run = func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error) {
			o.Common = c
			r, err := benchpkg.Webhooks(ctx, srv, o)
			return []benchpkg.Result{r}, err
		}
	case "presence":
		var o benchpkg.PresenceOptions
		fs.IntVar(&o.Members, "members", 5000, "members joining the channel, one WebSocket connection each")
		fs.DurationVar(&o.JoinWindow, "join-window", 5*time.Second, "spread the joins evenly over this long")
		fs.StringVar(&o.Channel, "channel", "", "channel name (default: a fresh bench-presence-… name)")
		fs.DurationVar(&o.Settle, "settle", 30*time.Second, "longest wait after the last join for every member to see the full member set")
		fs.IntVar(&o.Concurrency, "concurrency", 1024, "joins in flight over all worker processes")
		run = func(ctx context.Context, srv *benchpkg.Server, c benchpkg.Common) ([]benchpkg.Result, error) {
			o.Common = c
			r, err := benchpkg.Presence(ctx, srv, o)
			return []benchpkg.Result{r}, err
		}
	default:
		fmt.Fprintf(stderr, "tandem bench: unknown scenario %q\n\n%s", scenario, benchUsage)
		return usageError{shownError{fmt.Errorf("unknown scenario %q", scenario)}}
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("tandem bench %s: unexpected argument %q", scenario, fs.Arg(0))}
	}

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this binary: %w", err)
	}
	common := benchpkg.Common{Token: *token, SourceAddrs: *sourceAddrs, Procs: *procs, PerProc: *perProc,
		WorkerCommand: []string{exe, "bench", "worker"}}
	if !*quiet {
		common.Log = stderr
	}
	var srv *benchpkg.Server
	if *rawURL != "" {
		u, err := benchpkg.CheckLoopback(*rawURL)
		if err != nil {
			return err
		}
		srv = benchpkg.Remote(u)
	} else {
		srv, err = benchpkg.Spawn(ctx, benchpkg.SpawnOptions{Command: []string{exe, "serve"}, Args: append(spawnArgs, strings.Fields(*serverArgs)...)})
		if err != nil {
			return err
		}
		defer srv.Close()
		if !*quiet {
			fmt.Fprintf(stderr, "bench: spawned tandem serve at %s (pid %d)\n", srv.URL, srv.PID)
		}
	}
	common.URL = srv.URL
	common.CPUProfile = *cpuProfile
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	results, runErr := run(ctx, srv, common)
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else if len(results) > 0 {
		if err := benchpkg.WriteTable(stdout, results); err != nil {
			return err
		}
	}
	if runErr != nil {
		if logs := srv.Logs(); logs != "" && !*quiet {
			fmt.Fprintf(stderr, "bench: server log tail:\n%s", lastLines(logs, 20))
		}
		return runErr
	}
	if *failOnError {
		for _, r := range results {
			if n := r.ErrorCount(); n > 0 {
				return fmt.Errorf("%s: %d errors or missing deliveries", r.Scenario, n)
			}
			if r.Requests == 0 && r.Deliveries == 0 && r.Connections == 0 && r.Publishes == 0 {
				return fmt.Errorf("%s: nothing was measured", r.Scenario)
			}
		}
	}
	return nil
}

// benchWorker is the child side of the multi-process bench: it speaks
// the worker protocol on stdin/stdout until told to stop.
func benchWorker(ctx context.Context, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return benchpkg.RunWorker(ctx, os.Stdin, os.Stdout)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
