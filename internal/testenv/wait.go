package testenv

import (
	"testing"
	"time"
)

// WaitLimit bounds WaitFor: generous, since it is only reached when the test fails.
const WaitLimit = time.Minute

// WaitFor polls cond every few milliseconds until it holds, and fails the test if it does not
// within WaitLimit. what names the awaited state in the failure ("two devices waiting"). It
// asserts no timing: a condition that holds late still passes.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(WaitLimit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", WaitLimit, what)
		}
	}
}
