package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeBlock returns the shell block of README.md that follows the
// marker comment `<!-- readme-test: NAME -->`.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- readme-test: " + name + " -->\n```sh\n"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %q block", marker)
	}
	block, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatalf("README.md: the %s block does not end", name)
	}
	return block
}

var statusLineRE = regexp.MustCompile(`(?m)^status (\d{3})$`)

// TestReadmeTutorial runs the "Try it" walkthrough of README.md with bash
// and curl against a server on a loopback port, twice over the same data
// directory (as a second `make run` would find ./tandem-data), and checks
// the status of every request.
func TestReadmeTutorial(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found: %v", tool, err)
			}
			t.Skipf("%s not found on $PATH (%v); the README walkthrough needs it", tool, err)
		}
	}
	block := readmeBlock(t, "tutorial")
	dir := t.TempDir()
	s := startServer(t, "--data-dir", dir)
	addr := strings.TrimPrefix(s.URL, "http://")
	// Every curl also reports its status on stderr.
	script := "set -eu\ncurl() { command curl -w '%{stderr}status %{http_code}\\n' \"$@\"; }\n" +
		strings.ReplaceAll(block, "localhost:8080", addr)
	want := []string{
		"200", "200", "200", "200", "200", // healthz, readyz, metrics, openapi.yaml, asyncapi.yaml
		"201", "200", "200", // create the collection, list, get
		"201", "201", // POST with Idempotency-Key, PUT If-None-Match: *
		"200", "200", "304", // read, read for the ETag, If-None-Match
		"200",        // PATCH If-Match
		"200", "200", // list pages, label selector
		"204", "204", // delete the resource, the collection
		"400", // bad input
	}
	for i := 1; i <= 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v\nstdout:\n%s\nstderr:\n%s", i, err, out.String(), errOut.String())
		}
		var got []string
		for _, m := range statusLineRE.FindAllStringSubmatch(errOut.String(), -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("run %d: statuses\n%v\nwant\n%v\nstdout:\n%s\nstderr:\n%s", i, got, want, out.String(), errOut.String())
		}
		if !strings.Contains(out.String(), `"colour"`) {
			t.Fatalf("run %d: the bad-input problem does not name the field:\n%s", i, out.String())
		}
	}
	noViolations(t, s)
}
