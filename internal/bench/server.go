package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CheckLoopback refuses targets outside the loopback range: the bench is a
// load generator and must never be pointed at another machine.
func CheckLoopback(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--url %q: use an http:// or https:// base URL", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return u, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--url %q: the bench only targets loopback addresses (127.0.0.0/8, ::1, localhost)", raw)
	}
	return u, nil
}

// Server is the server under test: spawned by the bench or given by URL.
type Server struct {
	URL string
	// PID is the spawned server's process id (0 for --url).
	PID int

	cmd    *exec.Cmd
	logs   *tailBuffer
	done   chan error
	http   *http.Client
	tmpDir string
}

// SpawnOptions starts a server process.
type SpawnOptions struct {
	// Command is the server command line up to its flags, e.g.
	// {"/path/tandem", "serve"}; the bench appends --addr, --data-dir,
	// --rate-limit 0, the connection and subscription caps off (every
	// bench client connects from 127.0.0.1), --log-format json and then
	// Args.
	Command []string
	Args    []string
	// Env is added to the server's environment (e.g. GOMAXPROCS).
	Env []string
}

// Spawn starts a server on 127.0.0.1 (a free port) with a temporary data
// directory, with the open-files soft limit raised to the hard limit
// (children inherit it), and waits until it is listening.
func Spawn(ctx context.Context, opts SpawnOptions) (*Server, error) {
	if len(opts.Command) == 0 {
		return nil, errors.New("spawn: no server command")
	}
	raiseNoFile()
	dir, err := os.MkdirTemp("", "tandem-bench-*")
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, opts.Command[1:]...), "--addr", "127.0.0.1:0", "--data-dir", dir,
		"--rate-limit", "0", "--max-conns-per-ip", "0", "--max-subscriptions-per-principal", "0", "--max-subscriptions", "0",
		"--log-format", "json", "--log-level", "info")
	args = append(args, opts.Args...)
	cmd := exec.Command(opts.Command[0], args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.SysProcAttr = childAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spawn %s: %w", opts.Command[0], err)
	}
	s := &Server{PID: cmd.Process.Pid, cmd: cmd, logs: &tailBuffer{max: 64 << 10}, done: make(chan error, 1), tmpDir: dir}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			s.logs.Write(append(line, '\n'))
			if !found {
				var rec struct {
					Msg  string `json:"msg"`
					Addr string `json:"addr"`
				}
				if json.Unmarshal(line, &rec) == nil && rec.Msg == "tandem listening" && rec.Addr != "" {
					found = true
					addrCh <- rec.Addr
				}
			}
		}
		s.done <- cmd.Wait()
	}()
	select {
	case addr := <-addrCh:
		s.URL = "http://" + addr
	case err := <-s.done:
		os.RemoveAll(dir)
		return nil, fmt.Errorf("server exited before listening (%v):\n%s", err, s.logs.String())
	case <-time.After(30 * time.Second):
		s.Close()
		return nil, fmt.Errorf("server did not start listening within 30 s:\n%s", s.logs.String())
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	return s, nil
}

// Remote returns a Server for an already running server.
func Remote(u *url.URL) *Server { return &Server{URL: strings.TrimSuffix(u.String(), "/")} }

// Close stops a spawned server (SIGTERM, then SIGKILL after 15 s) and
// removes its data directory. It does nothing for a remote server.
func (s *Server) Close() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		err = <-s.done
	}
	s.cmd = nil
	os.RemoveAll(s.tmpDir)
	return err
}

// Logs returns the tail of a spawned server's log.
func (s *Server) Logs() string {
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// ServerStats is one sample of the server's memory and load.
type ServerStats struct {
	// RSSBytes is the resident set size: /proc/PID/status VmRSS for a
	// spawned server, else process_resident_memory_bytes from /metrics.
	RSSBytes       int64 `json:"rssBytes"`
	HeapInuseBytes int64 `json:"heapInuseBytes"`
	StackBytes     int64 `json:"stackInuseBytes"`
	Goroutines     int64 `json:"goroutines"`
	WSConnections  int64 `json:"wsConnections"`
	CPUSeconds     float64
}

// Stats samples the server's /metrics (and /proc when spawned).
func (s *Server) Stats(ctx context.Context) (ServerStats, error) {
	var st ServerStats
	m, err := s.metrics(ctx)
	if err != nil {
		return st, err
	}
	st.RSSBytes = int64(m["process_resident_memory_bytes"])
	st.HeapInuseBytes = int64(m["go_memstats_heap_inuse_bytes"])
	st.StackBytes = int64(m["go_memstats_stack_inuse_bytes"])
	st.Goroutines = int64(m["go_goroutines"])
	st.WSConnections = int64(m["tandem_ws_connections"])
	st.CPUSeconds = m["process_cpu_seconds_total"]
	if s.PID != 0 {
		if rss, err := procRSS(s.PID); err == nil {
			st.RSSBytes = rss
		}
	}
	return st, nil
}

// metrics reads the unlabelled samples of the Prometheus text format.
func (s *Server) metrics(ctx context.Context) (map[string]float64, error) {
	if s.http == nil {
		s.http = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		val, _, _ = strings.Cut(strings.TrimSpace(val), " ")
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// procRSS reads VmRSS from /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
