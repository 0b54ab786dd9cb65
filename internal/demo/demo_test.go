package demo

import (
	"bytes"
	"context"
	"io"
	"testing"
)

func TestRunRefusesIncompleteConfig(t *testing.T) {
	cliRun := func(context.Context, []string, io.Writer, io.Writer) int { return 0 }
	for name, cfg := range map[string]Config{
		"no CLI":         {Devices: 1, Out: io.Discard},
		"no output":      {Devices: 1, CLI: cliRun},
		"negative fleet": {Devices: -1, CLI: cliRun, Out: io.Discard},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Run(context.Background(), cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestMissingPartNamed checks that a step the server refuses stops the demo with ErrMissing and
// names the command.
func TestMissingPartNamed(t *testing.T) {
	var out bytes.Buffer
	failing := func(_ context.Context, args []string, _, stderr io.Writer) int {
		io.WriteString(stderr, "rampart: unknown command\n")
		return 1
	}
	_, err := Run(context.Background(), Config{Devices: 1, Dir: t.TempDir(), Out: &out, CLI: failing})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("rampart tenant create")) {
		t.Fatalf("err = %v; want the failing step named", err)
	}
}

func TestShortLabel(t *testing.T) {
	for what, want := range map[string]string{
		"report 1 received: heap overflow":                   "report",
		"1.0.0 revoked":                                      "revoke",
		"1.0.1 signed with the offline keys":                 "fix signed",
		"emergency deployment of 1.0.1 to edge-gateway/Prod": "deploy",
		"90 % of the fleet on 1.0.1 (2s after)":              "90 %",
		"report 1 triaged: valid, critical":                  "",
	} {
		if got := shortLabel(what); got != want {
			t.Errorf("shortLabel(%q) = %q, want %q", what, got, want)
		}
	}
}
