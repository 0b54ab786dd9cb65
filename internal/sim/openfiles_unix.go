//go:build unix

package sim

import (
	"fmt"
	"syscall"
)

// CheckOpenFiles reports, before a long run fails half-way with "too many open files", whether
// this process may hold perDevice descriptors for each of devices. Go raises the soft limit to
// the hard one at start, so what is left is the hard limit itself.
func CheckOpenFiles(devices, perDevice int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // no limit to check against
	}
	need := uint64(devices*perDevice + fileMargin)
	if lim.Cur != ^uint64(0) && need > lim.Cur {
		return fmt.Errorf("%d devices need about %d open files in this process, and it may open %d (ulimit -n); "+
			"raise the limit, run fewer devices, or run the server and `rampart sim` as separate processes",
			devices, need, lim.Cur)
	}
	return nil
}
