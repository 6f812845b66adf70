// Package servertest runs a `tandem serve` process for the SDK module's
// runnable examples and example programs. The server is built from the
// repository this module sits in (cmd/tandem of the module
// github.com/tandemhq/tandem, found by walking up from the working
// directory), so the SDK module needs none of the server's dependencies.
// Outside such a checkout (the module downloaded on its own) [Build]
// returns [ErrNoRepository].
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverModule is the module path of the server's go.mod.
const serverModule = "github.com/tandemhq/tandem"

// ErrNoRepository is returned by [Build] when the working directory is
// not inside a checkout of the Tandem repository.
var ErrNoRepository = errors.New("servertest: not inside the Tandem repository (the server's go.mod was not found above the working directory)")

// RepoRoot returns the directory holding the server's go.mod, searching
// from the working directory upwards. It returns [ErrNoRepository] when
// there is none.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(data) == serverModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoRepository
		}
		dir = parent
	}
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Build compiles cmd/tandem of the enclosing repository into dir and
// returns the binary's path. It returns [ErrNoRepository] outside the
// repository, or the compiler's error with its output.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tandem")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tandem")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("servertest: go build ./cmd/tandem in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// Server is a running `tandem serve --strict` on a loopback port.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
	URL string

	cmd    *exec.Cmd
	logs   *SyncBuffer
	exited chan struct{}
}

var listenRE = regexp.MustCompile(`msg="tandem listening" addr=(\S+)`)

// Start runs bin as `tandem serve` on 127.0.0.1 with an ephemeral port and
// its database in dataDir, with --strict (responses and frames checked
// against the specs, violations logged) and no rate limit, and waits for
// it to listen. It returns an error with the server's log when it exits
// or does not listen within 30 seconds.
func Start(bin, dataDir string, extra ...string) (*Server, error) {
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--strict", "--rate-limit", "0"}, extra...)
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stderr, cmd.Stdout = pw, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, logs: &SyncBuffer{}, exited: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
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
		close(s.exited)
	}()
	select {
	case addr := <-found:
		s.URL = "http://" + addr
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("servertest: tandem serve exited early:\n%s", s.logs.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-s.exited
		return nil, fmt.Errorf("servertest: tandem serve did not start within 30s:\n%s", s.logs.String())
	}
}

// Stop shuts the server down with SIGTERM (SIGKILL after 30 seconds) and
// returns an error naming every spec violation it logged, or that it
// ignored SIGTERM.
func (s *Server) Stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("servertest: tandem serve ignored SIGTERM")
	}
	var v strings.Builder
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "violates spec") {
			v.WriteString(line + "\n")
		}
	}
	if v.Len() > 0 {
		return fmt.Errorf("servertest: the server logged spec violations:\n%s", v.String())
	}
	return nil
}

// SyncBuffer is an io.Writer safe for concurrent use whose contents
// String returns; the server's log is kept in one, and tests of programs
// that print use one for their output.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it returns no error.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
