package sim

// FilesPerDevice is about how many descriptors one simulated device holds open in the process
// that runs it: its TLS connection to the server (the long-poll and the check-ins share it).
// A process that also runs the server holds the other end of every connection too.
const FilesPerDevice = 1

// fileMargin is what the rest of the process needs: the database, listeners, state files being
// written, connections being replaced after a simulated reboot.
const fileMargin = 512
