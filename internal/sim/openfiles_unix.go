//go:build unix

package sim

import "syscall"

// CheckOpenFiles reports, before a long run fails half-way with "too many open files", whether
// this process may hold perDevice descriptors for each of devices. Go raises the soft limit to
// the hard one at start, so what is left is the hard limit itself.
func CheckOpenFiles(devices, perDevice int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) {
		return nil // no limit to check against
	}
	return checkOpenFiles(devices, perDevice, lim.Cur)
}
