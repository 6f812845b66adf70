// Command testsummary runs `go test -json` with the arguments it is given,
// prints what a plain `go test` prints (a line per package, and the whole
// output of every test that failed), and ends with which tests used the
// external services (PostgreSQL, Redis, redis-server) and which skipped
// them and why. `make test` runs it, so a developer without the services
// sees at the end of the run what did not run, instead of a silent "ok".
//
// A test announces a service with a log line "using <Service> at <addr>"
// and skips with a message starting "<Service> not reachable" or
// "redis-server not found" (the helpers in the store, broker and
// cmd/tandem tests do both). The exit code is go test's.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes go test -json args and reports to stdout; it returns the
// process exit code. Leading arguments --also-in=DIR name further modules
// (directories with their own go.mod, such as sdk/go) where the same
// go test runs after the first, in the same report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	dirs := []string{""}
	for len(args) > 0 && strings.HasPrefix(args[0], "--also-in=") {
		dirs = append(dirs, strings.TrimPrefix(args[0], "--also-in="))
		args = args[1:]
	}
	r := newReport(stdout)
	code := 0
	for _, dir := range dirs {
		if c := r.goTest(ctx, goBin, dir, args, stderr); c != 0 && code == 0 {
			code = c
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.summary()
	if code == 0 && r.failed {
		return 1 // a failure go test did not reflect in its exit code
	}
	return code
}

// goTest runs go test -json args in dir (the working directory when
// empty), feeding its events to r, and returns go test's exit code.
func (r *report) goTest(ctx context.Context, goBin, dir string, args []string, stderr io.Writer) int {
	cmd := exec.CommandContext(ctx, goBin, append([]string{"test", "-json"}, args...)...)
	cmd.Dir = dir
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "testsummary:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "testsummary:", err)
		return 1
	}
	r.read(out)
	werr := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return 0
	case errors.As(werr, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	default:
		fmt.Fprintln(stderr, "testsummary:", werr)
		return 1
	}
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// test is what is known of one test while it runs.
type test struct {
	lines []string
	uses  map[string]bool // services it announced
}

// pkgState is one package's running tests and service tallies.
type pkgState struct {
	tests map[string]*test
	ran   map[string]int    // service → tests that used it and finished
	skip  map[string]int    // service → tests that skipped for it
	why   map[string]string // service → first skip reason
}

// report turns the event stream into go test's usual output plus the
// services summary.
type report struct {
	w      io.Writer
	pkgs   map[string]*pkgState
	failed bool
}

func newReport(w io.Writer) *report { return &report{w: w, pkgs: map[string]*pkgState{}} }

var (
	usingRE = regexp.MustCompile(`using (PostgreSQL|Redis|redis-server) at `)
	skipRE  = regexp.MustCompile(`(PostgreSQL|Redis) not reachable|(redis-server) not found`)
)

func (r *report) pkg(name string) *pkgState {
	p := r.pkgs[name]
	if p == nil {
		p = &pkgState{tests: map[string]*test{}, ran: map[string]int{}, skip: map[string]int{}, why: map[string]string{}}
		r.pkgs[name] = p
	}
	return p
}

// read consumes the stream; lines that are not JSON are printed as they are.
func (r *report) read(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(r.w, "%s\n", line)
			continue
		}
		r.handle(e)
	}
}

func (r *report) handle(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.w, e.Output)
		return
	case "build-fail":
		r.failed = true
		return
	}
	if e.Package == "" {
		fmt.Fprint(r.w, e.Output)
		return
	}
	p := r.pkg(e.Package)
	if e.Test == "" {
		switch e.Action {
		case "output":
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				fmt.Fprint(r.w, e.Output)
			}
		case "fail":
			r.failed = true
			// A panic or a timeout ends the binary without a test's
			// final action: show what those tests printed.
			names := make([]string, 0, len(p.tests))
			for n := range p.tests {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				for _, l := range p.tests[n].lines {
					fmt.Fprint(r.w, l)
				}
			}
			p.tests = map[string]*test{}
		}
		return
	}
	t := p.tests[e.Test]
	if t == nil {
		t = &test{uses: map[string]bool{}}
		p.tests[e.Test] = t
	}
	switch e.Action {
	case "output":
		t.lines = append(t.lines, e.Output)
		if m := usingRE.FindStringSubmatch(e.Output); m != nil {
			t.uses[m[1]] = true
		}
		if m := skipRE.FindStringSubmatch(e.Output); m != nil {
			svc := m[1] + m[2]
			if _, ok := p.why[svc]; !ok {
				p.why[svc] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(e.Output), skipPrefix(e.Output)))
			}
		}
	case "pass", "fail", "skip":
		if e.Action == "fail" {
			r.failed = true
			for _, l := range t.lines {
				fmt.Fprint(r.w, l)
			}
		}
		if e.Action == "skip" {
			for _, l := range t.lines {
				if m := skipRE.FindStringSubmatch(l); m != nil {
					p.skip[m[1]+m[2]]++
					break
				}
			}
		} else {
			for s := range t.uses {
				p.ran[s]++
			}
		}
		delete(p.tests, e.Test)
	}
}

// skipPrefix is the "file.go:12: " location test2json output carries.
func skipPrefix(line string) string {
	s := strings.TrimSpace(line)
	if i := strings.Index(s, ": "); i > 0 && strings.Contains(s[:i], ".go:") {
		return s[:i+2]
	}
	return ""
}

// summary prints, per service, the packages whose tests used it and those
// whose tests skipped it, with the first reason given.
func (r *report) summary() {
	names := make([]string, 0, len(r.pkgs))
	for n := range r.pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	var ran, skipped []string
	for _, n := range names {
		p := r.pkgs[n]
		short := shortPkg(n)
		for _, s := range sortedKeys(p.ran) {
			ran = append(ran, fmt.Sprintf("  %-28s %s: %s", short, s, plural(p.ran[s])))
		}
		for _, s := range sortedKeys(p.skip) {
			skipped = append(skipped, fmt.Sprintf("  %-28s %s: %s skipped: %s", short, s, plural(p.skip[s]), p.why[s]))
		}
	}
	fmt.Fprintln(r.w)
	fmt.Fprintln(r.w, "Tests against real services (PostgreSQL, Redis, redis-server):")
	if len(ran) == 0 {
		fmt.Fprintln(r.w, " ran: none")
	} else {
		fmt.Fprintln(r.w, " ran:")
		for _, l := range ran {
			fmt.Fprintln(r.w, l)
		}
	}
	if len(skipped) == 0 {
		fmt.Fprintln(r.w, " skipped: none")
	} else {
		fmt.Fprintln(r.w, " SKIPPED (these did not run; CI=true makes them fail instead):")
		for _, l := range skipped {
			fmt.Fprintln(r.w, l)
		}
	}
}

func shortPkg(p string) string {
	return strings.TrimPrefix(p, "github.com/tandemhq/tandem/")
}

func sortedKeys(m map[string]int) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

func plural(n int) string {
	if n == 1 {
		return "1 test"
	}
	return fmt.Sprintf("%d tests", n)
}
