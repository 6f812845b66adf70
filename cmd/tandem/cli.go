package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// The client commands (watch, publish, get, put, delete) talk to a running
// server through the Go SDK: data goes to stdout, one JSON value per line,
// and progress and errors to stderr.

const defaultURL = "http://127.0.0.1:8080"

// clientFlags are the connection flags every client command takes.
type clientFlags struct {
	url, token, apiKey string
}

func (f *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	url := getenv("TANDEM_URL")
	if url == "" {
		url = defaultURL
	}
	fs.StringVar(&f.url, "url", url, "server URL (env TANDEM_URL)")
	fs.StringVar(&f.token, "token", getenv("TANDEM_TOKEN"), "bearer token, e.g. minted by 'tandem token' (env TANDEM_TOKEN)")
	fs.StringVar(&f.apiKey, "api-key", getenv("TANDEM_API_KEY"), "API key (env TANDEM_API_KEY)")
}

func (f *clientFlags) client(opts ...tandem.Option) (*tandem.Client, error) {
	if f.token != "" {
		opts = append(opts, tandem.WithToken(f.token))
	}
	if f.apiKey != "" {
		opts = append(opts, tandem.WithAPIKey(f.apiKey))
	}
	return tandem.New(f.url, opts...)
}

// newClientFlagSet makes the flag set of a client command.
func newClientFlagSet(name, args, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tandem "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tandem %s %s [flags]\n\n%s\n\nFlags:\n", name, args, help)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterleaved parses flags given before, between or after the
// positional arguments and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if want >= 0 && len(pos) != want {
		fs.Usage()
		return nil, usageError{fmt.Errorf("%s: expected %d argument(s), got %d", fs.Name(), want, len(pos))}
	}
	return pos, nil
}

// fail is the error a client command returns for err: one clear line
// when the server cannot be reached, else err without the SDK's
// "tandem: " prefix (main adds its own).
func (f *clientFlags) fail(err error) error {
	if err == nil {
		return nil
	}
	if u := unreachable(f.url, err); u != err {
		return u
	}
	return errors.New(strings.TrimPrefix(err.Error(), "tandem: "))
}

// unreachable turns a failure to connect to the server at url (refused,
// no such host, dial timeout) into one line saying what to do; other
// errors come back as they are.
func unreachable(url string, err error) error {
	if isUnreachable(err) {
		return fmt.Errorf("cannot reach the server at %s: is the server running? (`make run` starts one)", url)
	}
	return err
}

// isUnreachable reports whether err is a failure to connect at all.
func isUnreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// watch prints the events of a topic as JSON lines until interrupted,
// resuming across reconnects.
func watch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newClientFlagSet("watch", "TOPIC", `Prints the events of TOPIC (e.g. collections/orders/resources,
channels/chat:lobby/messages, channels/chat:lobby/presence) as JSON lines,
exactly as the WebSocket API sends them. It waits for a server that is not
up yet, reconnects with backoff and resumes from the last cursor by itself,
so no event is lost or repeated; when the server no longer has the history
after that cursor it reloads with a snapshot (a notice on stderr; exit 1
with --no-resync). On Ctrl-C it prints the cursor to pass to --since next time.`, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	since := fs.String("since", "", "resume after this cursor (from an event's \"cursor\")")
	snapshot := fs.Bool("snapshot", false, "print the current state (or a channel's history) first, then a synced line")
	labels := fs.String("labels", "", "label selector for resource topics, e.g. env=prod")
	filter := fs.String("filter", "", "filter expression for resource topics, e.g. 'data.qty > 2': a resource that starts\nmatching arrives as resource.created, one that stops as resource.deleted")
	resync := fs.Bool("resync", true, "when the server answers resync-required (its history no longer reaches back to the cursor,\ne.g. a channel's history lost in a restart), reload with a snapshot and say so on stderr")
	noResync := fs.Bool("no-resync", false, "exit 1 on resync-required instead of reloading (same as --resync=false)")
	meta := fs.String("meta", "", "presence metadata (a JSON object) when watching a channel's messages")
	pos, err := parseInterleaved(fs, args, 1)
	if err != nil {
		return err
	}
	opts := &tandem.SubscribeOptions{Since: *since, Snapshot: *snapshot, Labels: *labels, Filter: *filter, AutoResync: *resync && !*noResync}
	if *meta != "" {
		if !json.Valid([]byte(*meta)) {
			return usageError{fmt.Errorf("--meta is not valid JSON")}
		}
		opts.Meta = json.RawMessage(*meta)
	}
	c, err := cf.client(tandem.WithStatus(func(s tandem.Status) {
		switch s.State {
		case tandem.StateConnected:
			fmt.Fprintf(stderr, "tandem watch: connected to %s\n", cf.url)
		case tandem.StateDisconnected:
			fmt.Fprintf(stderr, "tandem watch: connection lost (%v); reconnecting in %v\n", s.Err, s.Delay.Round(1e6))
		}
	}))
	if err != nil {
		return cf.fail(err)
	}
	// The first connection is retried as the SDK retries later ones: a
	// watcher started before its server waits for it.
	var conn *tandem.Conn
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		conn, err = c.Connect(ctx)
		if err == nil {
			break
		}
		if !isUnreachable(err) || ctx.Err() != nil {
			return cf.fail(err)
		}
		fmt.Fprintf(stderr, "tandem watch: %v; retrying in %v\n", cf.fail(err), delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
	}
	defer conn.Close()
	sub, err := conn.Subscribe(ctx, pos[0], opts)
	if err != nil {
		if errors.Is(err, tandem.ErrResyncRequired) {
			return fmt.Errorf("%v\nthe server no longer has the history after that cursor: run again with --snapshot (or without --no-resync)", cf.fail(err))
		}
		return cf.fail(err)
	}
	if f := sub.Filter(); f != "" {
		fmt.Fprintf(stderr, "tandem watch: subscribed to %s where %s\n", pos[0], f)
	} else {
		fmt.Fprintf(stderr, "tandem watch: subscribed to %s\n", pos[0])
	}
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				err := sub.Err()
				if errors.Is(err, tandem.ErrResyncRequired) {
					return fmt.Errorf("%v\nrun again with --snapshot to reload the state (or without --no-resync)", cf.fail(err))
				}
				return cf.fail(err)
			}
			if ev.Type == tandem.TypeReset {
				fmt.Fprintf(stderr, "tandem watch: the server no longer has the events after the last cursor (a restart lost a channel's history, or the change log was compacted); reloading: a new snapshot follows, discard what came before (--no-resync exits instead)\n")
				continue
			}
			if _, err := fmt.Fprintf(stdout, "%s\n", ev.Raw); err != nil {
				return err
			}
		case <-ctx.Done():
			if cur := sub.Cursor(); cur != "" {
				fmt.Fprintf(stderr, "tandem watch: stopped; resume with --since %s\n", cur)
			}
			return nil
		}
	}
}

// readData returns the JSON argument, or stdin for "-".
func readData(arg string, stdin io.Reader) (json.RawMessage, error) {
	b := []byte(arg)
	if arg == "-" {
		var err error
		if b, err = io.ReadAll(stdin); err != nil {
			return nil, err
		}
	}
	if !json.Valid(b) {
		return nil, usageError{fmt.Errorf("%q is not valid JSON (strings need quotes: '\"hello\"')", strings.TrimSpace(string(b)))}
	}
	return json.RawMessage(b), nil
}

// publish sends one message to a channel.
func publish(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newClientFlagSet("publish", "CHANNEL JSON", `Publishes JSON (any JSON value; "-" reads it from stdin) to CHANNEL and
prints the stored message with its offset and cursor.`, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	pos, err := parseInterleaved(fs, args, 2)
	if err != nil {
		return err
	}
	data, err := readData(pos[1], stdin)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return cf.fail(err)
	}
	m, err := c.Publish(ctx, pos[0], data)
	if err != nil {
		return cf.fail(err)
	}
	return writeJSON(stdout, m)
}

// getResources prints one resource, or the resources of a collection as
// JSON lines.
func getResources(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newClientFlagSet("get", "COLLECTION [ID]", `Prints resource ID of COLLECTION, or without ID every resource of it that
--labels and --filter select, in --order-by order (one JSON line each,
following pages until the last or until --limit). Examples:

  tandem get orders --filter 'data.qty > 2'
  tandem get orders --filter 'data.status == "paid" && labels.env == "prod"' --order-by 'data.qty desc' --limit 10

A bad expression is refused (400) naming its position; a query that would
examine more resources than the server's scan budget (422 needs-index)
names the fields to declare in the collection's indexes.`, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	labels := fs.String("labels", "", "label selector when listing, e.g. env=prod")
	filter := fs.String("filter", "", "filter expression when listing, e.g. 'data.qty > 2' (docs/queries.md)")
	orderBy := fs.String("order-by", "", "order when listing: up to 4 fields, each optionally asc or desc, e.g. 'data.qty desc, id'\n(default: by ID)")
	limit := fs.Int("limit", 0, "print at most this many resources (default: all, following every page)")
	pos, err := parseInterleaved(fs, args, -1)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return usageError{errors.New("tandem get: expected COLLECTION [ID]")}
	}
	if *limit < 0 {
		return usageError{errors.New("tandem get: --limit must be positive")}
	}
	c, err := cf.client()
	if err != nil {
		return cf.fail(err)
	}
	if len(pos) == 2 {
		if *labels != "" || *filter != "" || *orderBy != "" || *limit != 0 {
			return usageError{errors.New("tandem get: --labels, --filter, --order-by and --limit apply to listing (no ID)")}
		}
		r, err := c.Get(ctx, pos[0], pos[1])
		if err != nil {
			return cf.fail(err)
		}
		return writeJSON(stdout, r)
	}
	opts := &tandem.ListOptions{Labels: *labels, Filter: *filter, OrderBy: *orderBy, Limit: *limit}
	for page, err := range c.Pages(ctx, pos[0], opts) {
		if err != nil {
			return cf.fail(err)
		}
		for _, r := range page.Items {
			if err := writeJSON(stdout, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// putResource creates or replaces a resource.
func putResource(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newClientFlagSet("put", "COLLECTION ID JSON", `Creates or replaces resource ID of COLLECTION with the JSON object as its
data ("-" reads it from stdin) and prints the stored resource.`, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	labels := fs.String("labels", "", "labels, e.g. env=prod,tier=web")
	create := fs.Bool("create", false, "create the collection first if it does not exist")
	pos, err := parseInterleaved(fs, args, 3)
	if err != nil {
		return err
	}
	data, err := readData(pos[2], stdin)
	if err != nil {
		return err
	}
	var lm map[string]string
	if *labels != "" {
		lm = map[string]string{}
		for _, kv := range strings.Split(*labels, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" {
				return usageError{fmt.Errorf("--labels: %q is not key=value", kv)}
			}
			lm[k] = v
		}
	}
	c, err := cf.client()
	if err != nil {
		return cf.fail(err)
	}
	if *create {
		if err := c.EnsureCollection(ctx, pos[0]); err != nil {
			return cf.fail(err)
		}
	}
	r, err := c.Put(ctx, pos[0], pos[1], data, lm)
	if err != nil {
		return cf.fail(err)
	}
	return writeJSON(stdout, r)
}

// deleteResource deletes a resource.
func deleteResource(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newClientFlagSet("delete", "COLLECTION ID", "Deletes resource ID of COLLECTION.", stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	pos, err := parseInterleaved(fs, args, 2)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return cf.fail(err)
	}
	if err := c.Delete(ctx, pos[0], pos[1]); err != nil {
		return cf.fail(err)
	}
	fmt.Fprintf(stderr, "tandem delete: deleted %s/%s\n", pos[0], pos[1])
	return nil
}
