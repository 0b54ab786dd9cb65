package sim

import (
	"strings"
	"testing"
)

func TestCheckOpenFiles(t *testing.T) {
	if err := checkOpenFiles(10, 2, 20000); err != nil {
		t.Errorf("10 devices under a limit of 20000: %v", err)
	}
	// 10,000 devices at two descriptors each, plus the margin, pass a limit of 20,000.
	err := checkOpenFiles(10000, 2, 20000)
	if err == nil || !strings.Contains(err.Error(), "need about 20512 open files") || !strings.Contains(err.Error(), "ulimit -n") ||
		!strings.Contains(err.Error(), "separate processes") {
		t.Errorf("10000 devices under a limit of 20000: %v; want a refusal that says what to do", err)
	}
	// The limit of this process is read and passes a small fleet.
	if err := CheckOpenFiles(10, 1); err != nil {
		t.Errorf("this process refuses 10 devices: %v", err)
	}
}
