// Command rampart-agent is Rampart's device side. It stays small and free of database and
// server code so that it cross-compiles with CGO_ENABLED=0 to arm64 and armv7.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println("rampart-agent", version)
		return
	}
	fmt.Fprintln(os.Stderr, "rampart-agent", version+": enrolment, attestation and updates are not in this build yet; run `rampart-agent version`")
	os.Exit(2)
}
