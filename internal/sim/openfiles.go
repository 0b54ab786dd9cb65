package sim

import "github.com/rampartsec/rampart/internal/public"

// FilesPerDevice is about how many descriptors one simulated device holds open in the process
// that runs it: its TLS connection to the server (the long-poll and the check-ins share it).
// A process that also runs the server holds the other end of every connection too.
const FilesPerDevice = 1

// fileMargin is what the rest of the process needs: the database, listeners, state files being
// written, connections being replaced after a simulated reboot.
const fileMargin = 512

// checkOpenFiles compares what devices need with a limit of open files.
func checkOpenFiles(devices, perDevice int, limit uint64) error {
	if need := uint64(devices*perDevice + fileMargin); need > limit {
		return public.Errorf(public.Invalid, "%d devices need about %d open files in this process, and it may open %d (ulimit -n); "+
			"raise the limit, run fewer devices, or run the server and `rampart sim` as separate processes (doc/demo.md)",
			devices, need, limit)
	}
	return nil
}
