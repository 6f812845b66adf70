//go:build !linux

package wsapi

import (
	"errors"
	"syscall"
)

// poller is Linux-only; elsewhere every connection has a reader goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func (p *poller) stop()             {}
func (p *poller) add(c *conn) error { return errors.ErrUnsupported }
func (p *poller) arm(c *conn) error { return errors.ErrUnsupported }
func (p *poller) remove(c *conn)    {}

func readNonblock(rc syscall.RawConn, b []byte) (int, error) { return 0, errors.ErrUnsupported }
