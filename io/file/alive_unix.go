//go:build unix

package file

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process pid runs on this host: signal 0
// checks without sending anything. A process of another user (EPERM) is
// alive too.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
