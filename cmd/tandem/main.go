// Command tandem is the Tandem realtime API server and its command-line
// client. main only wires the process to run, so end-to-end tests call run
// directly on port 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		reportError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// usageError is a command-line mistake: exit code 2. main prints its
// message unless it wraps a shownError.
type usageError struct{ error }

// shownError is an error whose message is already on stderr (the flag
// package printed it with the usage, or the command did).
type shownError struct{ error }

// flagError is what a command returns for an error of flag.Parse:
// flag.ErrHelp as it is (run turns it into success: -h exits 0), anything
// else as a usage error the flag package already printed.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{shownError{err}}
}

// reportError prints err's message once, as "tandem: …" (or as it is when
// it already names its command, "tandem put: …").
func reportError(w io.Writer, err error) {
	if errors.As(err, new(shownError)) {
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "tandem") {
		msg = "tandem: " + msg
	}
	fmt.Fprintln(w, msg)
}

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `Tandem — a realtime API server.

Usage:
  tandem serve [flags]      start the server (tandem serve -h lists flags)
  tandem token [flags]      mint a development JWT (tandem token -h)
  tandem bench SCENARIO     load-test a server on this machine (tandem bench -h)
  tandem watch TOPIC        print a topic's events as JSON lines, resuming across reconnects
  tandem publish CHANNEL JSON   publish a message to a channel
  tandem get COLLECTION [ID]    print a resource, or a collection's resources (--filter, --order-by)
  tandem put COLLECTION ID JSON create or replace a resource
  tandem delete COLLECTION ID   delete a resource
  tandem webhooks list|create|get|delete|test|resume|status   manage webhooks (see tandem webhooks)
  tandem healthcheck        exit 0 when the server at --url is ready, 1 otherwise (for container HEALTHCHECKs)
  tandem version [--json]   print the version (--json: with commit, Go version and build date)

Client commands (watch, publish, get, put, delete, webhooks) take --url (TANDEM_URL,
default http://127.0.0.1:8080) and --token (TANDEM_TOKEN); -h lists the rest.

Every serve flag can also be set as TANDEM_<FLAG> (e.g. TANDEM_ADDR) or in a
YAML file given with --config; flags win over the environment, which wins
over the file.
`

// run is the whole program: it parses args, reads configuration from getenv
// and writes data to stdout and diagnostics to stderr. It returns when ctx
// is cancelled (graceful shutdown) or on error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed, and asking for it is no error
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command given")}
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		return token(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], getenv, stdout, stderr)
	case "watch":
		return watch(ctx, args[1:], getenv, stdout, stderr)
	case "publish":
		return publish(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "get":
		return getResources(ctx, args[1:], getenv, stdout, stderr)
	case "put":
		return putResource(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	case "delete":
		return deleteResource(ctx, args[1:], getenv, stdout, stderr)
	case "webhooks":
		return webhooks(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		return versionCmd(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "tandem: unknown command %q\n\n%s", args[0], usage)
		return usageError{shownError{fmt.Errorf("unknown command %q", args[0])}}
	}
}

func (e usageError) Unwrap() error { return e.error }
func (e shownError) Unwrap() error { return e.error }
