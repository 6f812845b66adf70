package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// webhooks is `tandem webhooks list|create|get|delete|test|resume|status`.
func webhooks(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	help := `Manages webhooks (admin grant):
  list                          every webhook and its status, one JSON line each
  create TOPIC URL              create one (--labels, --filter, --max-batch, --description); prints it with its secret
  get ID                        one webhook's status
  delete ID                     delete it
  test ID                       send a signed ping and print the receiver's answer
  resume ID                     restart a paused or resync-required webhook (--since CURSOR)
  status ID                     print the status every --every until interrupted`
	want := map[string]int{"list": 0, "create": 2, "get": 1, "delete": 1, "test": 1, "resume": 1, "status": 1}
	// The command is the first argument that is not a flag (flags may
	// come first: --url …).
	cmd := ""
	for i, a := range args {
		if !strings.HasPrefix(a, "-") && (i == 0 || !strings.HasPrefix(args[i-1], "-") || strings.Contains(args[i-1], "=")) {
			cmd, args = a, append(append([]string(nil), args[:i]...), args[i+1:]...)
			break
		}
	}
	n, ok := want[cmd]
	if !ok {
		fmt.Fprintf(stderr, "Usage: tandem webhooks COMMAND [ARGS] [flags]\n\n%s\n", help)
		if cmd == "" && slices.ContainsFunc(args, isHelpFlag) {
			return flag.ErrHelp
		}
		if cmd == "" {
			return usageError{errors.New("tandem webhooks: no command given")}
		}
		return usageError{fmt.Errorf("tandem webhooks: unknown command %q", cmd)}
	}
	fs := newClientFlagSet("webhooks "+cmd, "", help, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	labels := fs.String("labels", "", "create: label selector of a resource topic")
	filter := fs.String("filter", "", "create: filter expression of a resource topic, e.g. 'data.qty > 2'")
	maxBatch := fs.Int("max-batch", 1, "create: events per request (more than 1: the body is an array)")
	desc := fs.String("description", "", "create: a description")
	since := fs.String("since", "", "resume: restart after this cursor")
	every := fs.Duration("every", 2*time.Second, "status: how often to print")
	pos, err := parseInterleaved(fs, args, n)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return cf.fail(err)
	}
	var out any
	switch cmd {
	case "list":
		ws, err := c.Webhooks(ctx)
		if err != nil {
			return cf.fail(err)
		}
		for _, w := range ws {
			if err := writeJSON(stdout, w); err != nil {
				return err
			}
		}
		return nil
	case "create":
		body := client.WebhookCreate{Topic: pos[0], Url: pos[1], MaxBatch: maxBatch}
		if *labels != "" {
			body.Labels = labels
		}
		if *filter != "" {
			body.Filter = filter
		}
		if *desc != "" {
			body.Description = desc
		}
		out, err = c.CreateWebhook(ctx, body)
	case "get":
		out, err = c.Webhook(ctx, pos[0])
	case "delete":
		if err := c.DeleteWebhook(ctx, pos[0]); err != nil {
			return cf.fail(err)
		}
		fmt.Fprintf(stderr, "tandem webhooks: deleted %s\n", pos[0])
		return nil
	case "test":
		out, err = c.TestWebhook(ctx, pos[0])
	case "resume":
		out, err = c.ResumeWebhook(ctx, pos[0], *since)
	case "status":
		t := time.NewTicker(*every)
		defer t.Stop()
		for {
			w, err := c.Webhook(ctx, pos[0])
			if err != nil {
				return cf.fail(err)
			}
			if err := writeJSON(stdout, w); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
	if err != nil {
		return cf.fail(err)
	}
	return writeJSON(stdout, out)
}

// isHelpFlag reports whether a is one of the flag package's help flags.
func isHelpFlag(a string) bool {
	switch a {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}
