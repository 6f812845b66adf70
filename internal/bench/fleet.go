package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Common holds the options every scenario shares.
type Common struct {
	// URL is the server's base URL (loopback only).
	URL string
	// Token, if set, is sent as a bearer token on every request and upgrade.
	Token string
	// SourceAddrs is how many loopback source addresses (127.0.0.2 …) the
	// client sockets are spread over; 0 lets the kernel choose.
	SourceAddrs int
	// Procs is how many worker processes hold the WebSocket connections;
	// 0 chooses ceil(N / PerProc), and 1 means in this process.
	Procs int
	// PerProc is the connections one worker process holds when Procs is
	// 0; default 9000 (the open-files limit here is 20,000 per process).
	PerProc int
	// WorkerCommand starts a worker process speaking the RunWorker
	// protocol on stdin/stdout (e.g. {"/path/tandem", "bench", "worker"}).
	// Without it, every worker runs in this process.
	WorkerCommand []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// CPUProfile, if set, makes worker process i write its CPU profile to
	// CPUProfile.worker<i> (through TANDEM_BENCH_CPUPROFILE).
	CPUProfile string
}

func (c Common) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

// workerHandle is one worker, in this process or a child.
type workerHandle struct {
	in   io.WriteCloser
	out  *bufio.Scanner
	wait func() error
	kill func()
}

func (h *workerHandle) send(c workerCmd) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = h.in.Write(append(b, '\n'))
	return err
}

func (h *workerHandle) recv(want string) (WorkerReport, error) {
	if !h.out.Scan() {
		if err := h.out.Err(); err != nil {
			return WorkerReport{}, err
		}
		return WorkerReport{}, errors.New("worker exited without reporting")
	}
	var r WorkerReport
	if err := json.Unmarshal(h.out.Bytes(), &r); err != nil {
		return r, fmt.Errorf("worker report %q: %w", h.out.Text(), err)
	}
	if r.Event != want {
		return r, fmt.Errorf("worker sent %q, want %q", r.Event, want)
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

// startInProcess runs RunWorker on pipes, in this process.
func startInProcess(ctx context.Context) *workerHandle {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := RunWorker(ctx, inR, outW)
		outW.CloseWithError(io.EOF)
		inR.Close()
		done <- err
	}()
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	kill := func() {
		inW.Close()
		outR.CloseWithError(errors.New("worker killed"))
	}
	var once sync.Once
	var err error
	wait := func() error {
		once.Do(func() { err = <-done })
		return err
	}
	return &workerHandle{in: inW, out: sc, wait: wait, kill: kill}
}

// startProcess runs a worker child process.
func startProcess(ctx context.Context, argv []string, stderr io.Writer, env []string) (*workerHandle, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 5 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %s: %w", strings.Join(argv, " "), err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &workerHandle{in: in, out: sc, wait: cmd.Wait, kill: func() { _ = cmd.Process.Kill() }}, nil
}

// fleet is the set of workers of one scenario run.
type fleet struct {
	hs    []*workerHandle
	ready []WorkerReport
}

// startFleet spreads count connections (subscribed to topic if set) over
// the configured workers and waits until every worker has dialled all of
// its share.
func startFleet(ctx context.Context, c Common, count, concurrency int, topic string) (*fleet, error) {
	return startFleetSpec(ctx, c, count, concurrency, WorkerSpec{Topic: topic})
}

// startFleetSpec is startFleet with the scenario's fields of every
// worker's spec taken from tmpl (the share and addresses are filled in).
func startFleetSpec(ctx context.Context, c Common, count, concurrency int, tmpl WorkerSpec) (*fleet, error) {
	procs := c.Procs
	per := c.PerProc
	if per <= 0 {
		per = 9000
	}
	if procs <= 0 {
		procs = (count + per - 1) / per
	}
	procs = max(1, min(procs, count))
	f := &fleet{}
	for i := range procs {
		var h *workerHandle
		if procs == 1 || len(c.WorkerCommand) == 0 {
			h = startInProcess(ctx)
		} else {
			var err error
			var stderr io.Writer = os.Stderr
			if c.Log != nil {
				stderr = c.Log
			}
			var env []string
			if c.CPUProfile != "" {
				env = append(env, fmt.Sprintf("TANDEM_BENCH_CPUPROFILE=%s.worker%d", c.CPUProfile, i))
			}
			if h, err = startProcess(ctx, c.WorkerCommand, stderr, env); err != nil {
				f.kill()
				return nil, err
			}
		}
		f.hs = append(f.hs, h)
		n := count / procs
		if i < count%procs {
			n++
		}
		spec := tmpl
		spec.URL, spec.Count, spec.Concurrency, spec.Token = c.URL, n, concurrency, c.Token
		spec.SourceAddrs, spec.SourceOffset = c.SourceAddrs, i*max(1, c.SourceAddrs)
		if err := h.send(workerCmd{Cmd: "start", Spec: spec}); err != nil {
			f.kill()
			return nil, err
		}
	}
	var firstErr error
	for _, h := range f.hs {
		r, err := h.recv("ready")
		if err != nil && firstErr == nil {
			firstErr = err
		}
		f.ready = append(f.ready, r)
	}
	if firstErr != nil {
		f.kill()
		return nil, firstErr
	}
	return f, nil
}

// connected sums the successful dials; failed the others.
func (f *fleet) connected() (ok, failed int, firstErr string) {
	for _, r := range f.ready {
		ok += r.Connected
		failed += r.Failed
		if firstErr == "" {
			firstErr = r.FirstErr
		}
	}
	return ok, failed, firstErr
}

// dialWindow is the time from the first worker's first dial to the last
// worker's last welcome.
func (f *fleet) dialWindow() time.Duration {
	var start, end int64
	for i, r := range f.ready {
		if i == 0 || r.DialStart < start {
			start = r.DialStart
		}
		if r.DialEnd > end {
			end = r.DialEnd
		}
	}
	return time.Duration(end - start)
}

func (f *fleet) connectLatency() *Histogram {
	var h Histogram
	for _, r := range f.ready {
		h.Merge(r.Connect)
	}
	return &h
}

// progress returns the deliveries received so far by all workers.
func (f *fleet) progress() (uint64, error) {
	for _, h := range f.hs {
		if err := h.send(workerCmd{Cmd: "poll"}); err != nil {
			return 0, err
		}
	}
	var n uint64
	for _, h := range f.hs {
		r, err := h.recv("progress")
		if err != nil {
			return n, err
		}
		n += r.Deliveries
	}
	return n, nil
}

// await polls until the workers have received want deliveries or max has
// passed; it returns how long that took.
func (f *fleet) await(ctx context.Context, want uint64, max time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < max && ctx.Err() == nil {
		if n, err := f.progress(); err != nil || n >= want {
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	return time.Since(start)
}

// stop asks every worker for its result and waits for them to exit.
func (f *fleet) stop() ([]WorkerReport, error) {
	var wg sync.WaitGroup
	out := make([]WorkerReport, len(f.hs))
	errs := make([]error, len(f.hs))
	for i, h := range f.hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.send(workerCmd{Cmd: "stop"}); err != nil {
				errs[i] = err
				h.kill()
				_ = h.wait()
				return
			}
			out[i], errs[i] = h.recv("result")
			h.in.Close()
			if err := h.wait(); err != nil && errs[i] == nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (f *fleet) kill() {
	for _, h := range f.hs {
		h.kill()
		_ = h.wait()
	}
}
