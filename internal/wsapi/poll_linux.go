//go:build linux

package wsapi

import (
	"errors"
	"sync"
	"syscall"
)

// poller waits for readability of idle connections with one epoll instance
// and one goroutine per server, so an idle connection needs no goroutine of
// its own (and none of its stack): when a socket turns readable, a reader
// goroutine is started for it, reads what is there without blocking and
// exits, re-arming the socket.
//
// Sockets are registered EPOLLONESHOT: one readiness report per arm, so at
// most one reader runs per connection. Arming checks readiness at once
// (epoll_ctl polls the file), so bytes that arrive between the reader's
// last read and the re-arm are not missed.
type poller struct {
	epfd     int
	wakeR    int // read end of the pipe that stops wait
	wakeW    int
	mu       sync.Mutex
	conns    map[uint32]*conn
	next     uint32
	done     chan struct{}
	stopOnce sync.Once
}

// stopID marks the stop pipe's events; connections get ids from 1.
const stopID = 0

// newPoller starts a poller. Errors: the kernel refused epoll or a pipe.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: stopID}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(p[0])
		_ = syscall.Close(p[1])
		return nil, err
	}
	pl := &poller{epfd: epfd, wakeR: p[0], wakeW: p[1], conns: map[uint32]*conn{}, done: make(chan struct{})}
	go pl.wait()
	return pl, nil
}

// wait dispatches readiness reports until stop.
func (p *poller) wait() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			id := uint32(ev.Fd)
			if id == stopID {
				return
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				go c.readReady()
			}
		}
	}
}

// stop ends the wait goroutine and releases the epoll instance; only once
// no connection uses it.
func (p *poller) stop() {
	p.stopOnce.Do(func() {
		_, _ = syscall.Write(p.wakeW, []byte{1})
		<-p.done
		_ = syscall.Close(p.epfd)
		_ = syscall.Close(p.wakeR)
		_ = syscall.Close(p.wakeW)
	})
}

// add registers c, armed. Errors: the socket exposes no descriptor, or
// epoll_ctl failed; the caller then reads c with a goroutine instead.
func (p *poller) add(c *conn) error {
	p.mu.Lock()
	for {
		p.next++
		if _, used := p.conns[p.next]; p.next != stopID && !used {
			break
		}
	}
	c.pollID = p.next
	p.conns[c.pollID] = c
	p.mu.Unlock()
	if err := p.ctl(c, syscall.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.conns, c.pollID)
		p.mu.Unlock()
		return err
	}
	return nil
}

// arm asks for the next readiness report of c. Errors: as epoll_ctl's
// (the socket is closed, say).
func (p *poller) arm(c *conn) error { return p.ctl(c, syscall.EPOLL_CTL_MOD) }

// remove unregisters c; no reader is started for it afterwards, except one
// whose report was already taken (readReady copes with that).
func (p *poller) remove(c *conn) {
	_ = p.ctl(c, syscall.EPOLL_CTL_DEL)
	p.mu.Lock()
	delete(p.conns, c.pollID)
	p.mu.Unlock()
}

// ctl runs epoll_ctl on c's socket while holding a reference to its
// descriptor, so a concurrent close cannot hand the number to another
// socket in between.
func (p *poller) ctl(c *conn, op int) error {
	var err error
	cerr := c.rawConn.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(c.pollID)}
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// readNonblock reads what the socket holds without waiting: n > 0 bytes,
// or (0, nil) at end of stream, or errWouldBlock when nothing is there.
func readNonblock(rc syscall.RawConn, b []byte) (int, error) {
	var n int
	var err error
	cerr := rc.Read(func(fd uintptr) bool {
		for {
			n, err = syscall.Read(int(fd), b)
			if err != syscall.EINTR {
				return true
			}
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	if err == syscall.EAGAIN {
		return 0, errWouldBlock
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}
