// Package testenv decides what a test does when a component it needs is missing: it skips with
// a clear message on a developer's machine, and fails under RAMPART_REQUIRE_ALL=1 (set by
// .ci/run) so that CI never passes by skipping; it polls for a state a test awaits
// (WaitFor), and stands between clients and a server that goes away (Proxy). Only tests import it.
package testenv

import (
	"os"
	"testing"
)

// RequireAll reports whether every component must be present.
func RequireAll() bool { return os.Getenv("RAMPART_REQUIRE_ALL") == "1" }

// Missing stops the test because component is absent: a skip normally, a failure under
// RAMPART_REQUIRE_ALL=1. how tells the reader how to provide it.
func Missing(t testing.TB, component, how string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("%s is required (RAMPART_REQUIRE_ALL=1) but missing: %s", component, how)
	}
	t.Skipf("skipping: %s is missing: %s (set RAMPART_REQUIRE_ALL=1 to make this a failure)", component, how)
}
