package bench

import "syscall"

// childAttr makes a child process die with the bench (no orphaned servers
// or workers when the bench is killed).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
