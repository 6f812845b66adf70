// Package redistest runs a private redis-server for tests that must stop
// and restart Redis without disturbing anyone else using the machine's
// Redis. The server listens on a free 127.0.0.1 port, keeps nothing on
// disk (a restart loses every key, as a flush would) and is killed when
// the test ends.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a redis-server child process on a fixed loopback port.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string

	logs logBuffer // every process's output, one after the other

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server on a free loopback port and waits until it
// answers PING. Without a redis-server binary on $PATH the test is
// skipped, or failed when $CI is set. The server is killed at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found on $PATH (" + err.Error() + "); install Redis (apt-get install redis-server) to run this test"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &Server{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	t.Cleanup(func() { s.Kill() })
	s.Restart()
	t.Logf("using redis-server at %s (a private process)", s.Addr())
	return s
}

// freePort returns a free loopback port outside the ephemeral port range.
// A client that keeps redialling a dead server on an ephemeral port can
// connect to itself (TCP simultaneous open, source port = destination
// port) and read its own commands back as if a server answered.
func freePort(t testing.TB) int {
	t.Helper()
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a > 0 && z >= a {
			lo, hi = a, z
		}
	}
	var candidates []int
	for p := 10000; p < 65536; p += 7 {
		if p < lo || p > hi {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		t.Fatalf("no port outside the ephemeral range %d-%d", lo, hi)
	}
	start := int(time.Now().UnixNano() % int64(len(candidates)))
	for k := range candidates {
		p := candidates[(start+k)%len(candidates)]
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		return p
	}
	t.Fatalf("no free port outside the ephemeral range %d-%d", lo, hi)
	return 0
}

// URL is the redis:// URL of the server (database 0).
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Logs returns what the server processes logged so far.
func (s *Server) Logs() string { return s.logs.String() }

// Kill stops the server with SIGKILL (no save, no goodbye to clients) and
// waits for it to exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
		fmt.Fprintf(&s.logs, "--- %s: killed redis-server %d\n", time.Now().Format(time.RFC3339Nano), cmd.Process.Pid)
	case <-time.After(20 * time.Second):
		s.t.Errorf("redis-server %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Restart kills the server if it runs, then starts a new, empty one on the
// same port and waits until it answers PING (retrying while the port is
// still held by the old process).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d: %v\n%s", s.port, err, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) start() error {
	fmt.Fprintf(&s.logs, "--- %s: starting redis-server on %s\n", time.Now().Format(time.RFC3339Nano), s.Addr())
	cmd := exec.Command(s.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = &s.logs, &s.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	for i := 0; ; i++ {
		select {
		case <-done: // e.g. the port is still in use
			s.mu.Lock()
			if s.cmd == cmd {
				s.cmd = nil
			}
			s.mu.Unlock()
			return errors.New("redis-server exited at start")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if i > 200 {
			s.Kill()
			return fmt.Errorf("no PING answer: %w", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
