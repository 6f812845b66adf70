package gosdk_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"

	"github.com/tandemhq/tandem/internal/specval"
)

// tandemBin is the tandem binary built by TestMain.
var tandemBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tandem-sdk-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tandemBin = filepath.Join(dir, "tandem")
	out, err := exec.Command("go", "build", "-o", tandemBin, "github.com/tandemhq/tandem/cmd/tandem").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build tandem: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// Server is a `tandem serve` subprocess on a loopback address.
type Server struct {
	URL     string
	Addr    string
	DataDir string
	extra   []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	// allLogs keeps the logs of every incarnation for the violation check.
	allLogs []*syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listenRE = regexp.MustCompile(`msg="tandem listening" addr=(\S+)`)

// startProcess runs tandem serve --strict on addr with its database in
// dataDir and waits for its listening log line.
func startProcess(dataDir, addr string, extra ...string) (*Server, error) {
	s := &Server{DataDir: dataDir, Addr: addr, extra: extra}
	return s, s.start()
}

func (s *Server) start() error {
	args := append([]string{"serve", "--addr", s.Addr, "--data-dir", s.DataDir, "--strict", "--rate-limit", "0"}, s.extra...)
	cmd := exec.Command(tandemBin, args...)
	logs := &syncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	select {
	case a := <-found:
		s.mu.Lock()
		s.Addr, s.URL = a, "http://"+a
		s.cmd, s.logs, s.exited = cmd, logs, exited
		s.allLogs = append(s.allLogs, logs)
		s.mu.Unlock()
		return nil
	case <-exited:
		return fmt.Errorf("tandem serve exited early:\n%s", logs.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("tandem serve did not start:\n%s", logs.String())
	}
}

// signal sends sig and waits for the process to exit.
func (s *Server) signal(sig os.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("tandem serve ignored %v", sig)
	}
}

func (s *Server) violations() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out strings.Builder
	for _, l := range s.allLogs {
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, "violates spec") {
				out.WriteString(line + "\n")
			}
		}
	}
	return out.String()
}

// StartServer starts a tandem subprocess with a fresh data directory; it
// is stopped, and its logs checked for spec violations, when the test ends.
func StartServer(t *testing.T, extra ...string) *Server {
	t.Helper()
	s, err := startProcess(t.TempDir(), "127.0.0.1:0", extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.signal(syscall.SIGTERM); err != nil {
			t.Error(err)
		}
		if v := s.violations(); v != "" {
			t.Errorf("server logged spec violations:\n%s", v)
		}
	})
	return s
}

// Kill stops the server abruptly (SIGKILL: no close frames, no drain).
func (s *Server) Kill(t *testing.T) {
	t.Helper()
	if err := s.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// Stop shuts the server down gracefully (SIGTERM: close 1001, drain).
func (s *Server) Stop(t *testing.T) {
	t.Helper()
	if err := s.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// Restart starts the server again on the same address, with dataDir ("" for
// the same data directory).
func (s *Server) Restart(t *testing.T, dataDir string) {
	t.Helper()
	if dataDir != "" {
		s.DataDir = dataDir
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// Logs returns the current incarnation's log.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

var (
	specOnce sync.Once
	openAPI  *specval.OpenAPI
	asyncAPI *specval.AsyncAPI
	specErr  error
)

func specs(t testing.TB) (*specval.OpenAPI, *specval.AsyncAPI) {
	t.Helper()
	specOnce.Do(func() {
		if openAPI, specErr = specval.LoadOpenAPI(); specErr == nil {
			asyncAPI, specErr = specval.LoadAsyncAPI()
		}
	})
	if specErr != nil {
		t.Fatal(specErr)
	}
	return openAPI, asyncAPI
}

// newClient returns a client of url whose every REST response and
// WebSocket frame (both directions) is validated against the specs, with a
// short reconnect backoff.
func newClient(t *testing.T, url string, opts ...tandem.Option) *tandem.Client {
	t.Helper()
	oa, aa := specs(t)
	hc := &http.Client{Transport: oa.RoundTripper(&http.Transport{}, t.Errorf), Timeout: 30 * time.Second}
	var mu sync.Mutex
	done := false
	t.Cleanup(func() { mu.Lock(); done = true; mu.Unlock() })
	trace := func(out bool, b []byte) {
		var err error
		if out {
			_, err = aa.ValidateClientFrame(b)
		} else {
			err = aa.ValidateServerFrame(b)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !done {
			t.Errorf("frame violates spec/asyncapi.yaml (out=%v): %v\n%s", out, err, b)
		}
	}
	base := []tandem.Option{tandem.WithHTTPClient(hc), tandem.WithBackoff(tandem.Backoff{Min: 20 * time.Millisecond, Max: 250 * time.Millisecond}), tandem.WithFrameTrace(trace)}
	c, err := tandem.New(url, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
