//go:build !linux

package bench

import "syscall"

// childAttr: without Linux's parent-death signal, children are ended by
// the bench's own cleanup only.
func childAttr() *syscall.SysProcAttr { return nil }
