package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// healthcheck asks the server at --url whether it is ready (GET /readyz)
// and exits 0 when it answers 200, 1 otherwise with one line on stderr. It
// needs nothing in the image but the tandem binary, so a container's
// HEALTHCHECK can run it. Errors: usageError for bad flags; an error
// naming the URL and the status or the failure.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newClientFlagSet("healthcheck", "", `Exits 0 when the server at --url answers GET /readyz with 200 (its store and
broker are reachable), and 1 otherwise, with the reason on stderr. For
container HEALTHCHECKs: the image has no curl.`, stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	live := fs.Bool("live", false, "check /healthz (the process answers) instead of /readyz")
	if _, err := parseInterleaved(fs, args, 0); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError{errors.New("tandem healthcheck: --timeout must be positive")}
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	u := strings.TrimRight(cf.url, "/") + path
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageError{fmt.Errorf("tandem healthcheck: --url: %v", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("tandem healthcheck: %s: %w", u, unreachable(cf.url, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tandem healthcheck: %s answered %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "ok %s\n", u)
	return nil
}
