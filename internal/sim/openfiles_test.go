//go:build unix

package sim

import (
	"strings"
	"syscall"
	"testing"
)

func TestCheckOpenFiles(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur == ^uint64(0) || lim.Cur > 1<<40 {
		t.Skipf("no finite open-file limit here (%d); nothing to refuse", lim.Cur)
	}
	if err := CheckOpenFiles(10, 2); err != nil {
		t.Errorf("10 devices refused under a limit of %d: %v", lim.Cur, err)
	}
	n := int(lim.Cur) // a device each, plus the margin: over the limit
	err := CheckOpenFiles(n, 1)
	if err == nil || !strings.Contains(err.Error(), "ulimit -n") || !strings.Contains(err.Error(), "separate processes") {
		t.Errorf("%d devices under a limit of %d: %v; want a refusal that says what to do", n, lim.Cur, err)
	}
}
