package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// buildTandem compiles this command into dir and returns the binary's path.
// The build cache makes repeated builds a link step.
func buildTandem(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "tandem")
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// procServer is `tandem serve` running as a child process on a loopback
// port, so that it can be killed with SIGKILL and measured from /proc.
type procServer struct {
	*testServer
	cmd       *exec.Cmd
	transport *http.Transport
	done      chan struct{} // closed when the process has exited
	exitErr   error         // cmd.Wait's result, set before done closes
}

// startProc runs bin serve on 127.0.0.1:0 with args appended and waits
// until it logs its address. The process is killed when the test ends.
func startProc(t testing.TB, bin string, args ...string) *procServer {
	t.Helper()
	logs := &syncBuffer{}
	full := append([]string{"serve", "--addr", "127.0.0.1:0", "--rate-limit", "0"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.Env = append(os.Environ(), "TANDEM_ADDR=", "TANDEM_STORE=")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &procServer{cmd: cmd, done: make(chan struct{})}
	go func() { p.exitErr = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(t) })

	var addr string
	deadline := time.After(30 * time.Second)
	for addr == "" {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case <-p.done:
			t.Fatalf("tandem serve exited early (%v):\n%s", p.exitErr, logs.String())
		case <-deadline:
			t.Fatalf("tandem serve did not start:\n%s", logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.transport = &http.Transport{MaxIdleConnsPerHost: 64}
	p.testServer = newRemoteServer(t, "http://"+addr, logs, p.transport)
	return p
}

// newRemoteServer returns test helpers for a server at base whose
// responses are validated against spec/openapi.yaml.
func newRemoteServer(t testing.TB, base string, logs *syncBuffer, tr http.RoundTripper) *testServer {
	t.Helper()
	v, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: v.RoundTripper(tr, t.Errorf), Timeout: 30 * time.Second}
	c, err := client.NewClientWithResponses(base, client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{URL: base, Logs: logs, HTTP: hc, Client: c, stop: func() {}}
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *procServer) kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL) // fails harmlessly once it has exited
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Errorf("process %d did not die after SIGKILL", p.cmd.Process.Pid)
	}
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
}

// stopGraceful sends SIGTERM and waits for a graceful exit.
func (p *procServer) stopGraceful(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.exitErr != nil {
			t.Errorf("tandem serve exited with %v after SIGTERM:\n%s", p.exitErr, tail(p.Logs.String(), 4000))
		}
	case <-time.After(30 * time.Second):
		t.Errorf("tandem serve did not stop within 30s of SIGTERM")
		_ = p.cmd.Process.Kill()
	}
}

// rssBytes reads VmRSS of the process from /proc.
func (p *procServer) rssBytes() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q", line)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", p.cmd.Process.Pid)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// postgresAdminDSN is the server the PostgreSQL variants use.
func postgresAdminDSN() string {
	if v := os.Getenv("TANDEM_TEST_POSTGRES"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// freshPostgres creates an empty database, dropped when the test ends, and
// returns its DSN. Unreachable PostgreSQL skips the test, or fails it when
// $CI is set.
func freshPostgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, postgresAdminDSN())
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL not reachable at 127.0.0.1:5432 (%v); start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, or set TANDEM_TEST_POSTGRES", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	defer admin.Close(context.Background())
	if u, err := url.Parse(postgresAdminDSN()); err == nil {
		t.Logf("using PostgreSQL at %s", u.Redacted())
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "tandem_e2e_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := pgx.Connect(ctx, postgresAdminDSN())
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer a.Close(ctx)
		if _, err := a.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(postgresAdminDSN())
	if err != nil || u.Scheme == "" {
		t.Fatalf("TANDEM_TEST_POSTGRES must be a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String()
}

// requirePostgresStore fails fast when this build of serve does not offer
// a PostgreSQL store (its help text no longer mentions it).
func requirePostgresStore(t testing.TB, bin string) {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	if !strings.Contains(strings.ToLower(string(out)), "postgres") {
		t.Fatalf("tandem serve -h does not mention a postgres:// --store:\n%s", out)
	}
}

// storeVariant is a store for `tandem serve` in the process tests.
type storeVariant struct {
	name string
	args func(t *testing.T) []string // serve's flags for a fresh, empty store
}

// storeVariants are embedded SQLite (a fresh data directory) and
// PostgreSQL (a fresh database; skipped, or failed under $CI, when
// PostgreSQL is unreachable).
func storeVariants(bin string) []storeVariant {
	return []storeVariant{
		{"SQLite", func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} }},
		{"PostgreSQL", func(t *testing.T) []string {
			requirePostgresStore(t, bin)
			return []string{"--store", freshPostgres(t)}
		}},
	}
}
