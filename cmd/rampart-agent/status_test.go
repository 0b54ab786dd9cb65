package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStatusWithoutADeviceExits1 runs the binary's status on an empty state folder with the
// default attester (tpm, which this machine need not have): one sentence on stderr that says
// what to do, exit status 1, nothing on stdout and nothing written into the folder.
func TestStatusWithoutADeviceExits1(t *testing.T) {
	bin := buildAgent(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--state", dir, "status")
	cmd.Env = append(os.Environ(), "RAMPART_SERVER=", "RAMPART_CA_FILE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("status on an empty folder: %v, want exit status 1", err)
	}
	if want := "rampart-agent: no device in " + dir + " yet; run rampart-agent enroll first\n"; stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("stderr %q, stdout %q; want stderr %q alone", stderr.String(), stdout.String(), want)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("status wrote into the state folder: %v, %v", entries, err)
	}
	// A folder that does not exist stays so.
	missing := filepath.Join(dir, "state")
	if out, err := exec.Command(bin, "--state", missing, "--attester", "software", "status").CombinedOutput(); err == nil {
		t.Errorf("status on a missing folder succeeded: %s", out)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("status created %s: %v", missing, err)
	}
}
