package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no verb", nil, "one verb expected"},
		{"two verbs", []string{"run", "status"}, "one verb expected"},
		{"unknown verb", []string{"fly"}, `unknown verb "fly"`},
		{"unknown flag after the verb", []string{"run", "--fast"}, "flag provided but not defined"},
		{"no server", []string{"run", "--once"}, "run needs --server and --ca-file"},
		{"-v is not a flag", []string{"-v", "status"}, "flag provided but not defined: -v (rampart-agent --help lists the flags)"},
		{"bad CA file", []string{"--server", "https://x", "--ca-file", "/dev/null", "status"}, "--ca-file /dev/null: no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(context.Background(), tc.args, "test", &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run(%q) = %v, want an error with %q", tc.args, err, tc.want)
			}
			if !errors.Is(err, ErrUsage) && strings.Contains(tc.want, "verb") {
				t.Errorf("a usage error is not ErrUsage: %v", err)
			}
			// The user sees the sentence alone, once: no "usage:" prefix, no flag-package dump.
			if msg := Message(err); strings.HasPrefix(msg, "usage") || errb.Len() != 0 {
				t.Errorf("Message = %q, stderr %q", msg, errb.String())
			}
		})
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, "1.2.3", &out, &out); err != nil || out.String() != "rampart-agent 1.2.3\n" {
		t.Fatalf("version: %q, %v", out.String(), err)
	}
}

// TestHelpAndStatus pins what a newcomer meets first: --help (before or after the verb) prints
// the usage on stdout and succeeds; --version prints the version; status reads the state folder
// alone, with no --server or --ca-file.
func TestHelpAndStatus(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"run", "--help"}} {
		var out, errb bytes.Buffer
		if err := Run(context.Background(), args, "test", &out, &errb); err != nil || !strings.HasPrefix(out.String(), "usage: rampart-agent") || errb.Len() != 0 {
			t.Errorf("Run(%q) = %v, stdout %.40q, stderr %q; want the usage on stdout and success", args, err, out.String(), errb.String())
		}
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--version"}, "1.2.3", &out, &out); err != nil || out.String() != "rampart-agent 1.2.3\n" {
		t.Fatalf("--version: %q, %v", out.String(), err)
	}
	out.Reset()
	t.Setenv("RAMPART_SERVER", "")
	t.Setenv("RAMPART_CA_FILE", "")
	err := Run(context.Background(), []string{"--state", t.TempDir(), "--attester", "software", "status", "--output", "json"}, "test", &out, &out)
	var st struct {
		DeviceID string `json:"device_id"`
		Attester string `json:"attester"`
	}
	if err != nil || json.Unmarshal(out.Bytes(), &st) != nil || len(st.DeviceID) != 64 || st.Attester != "software" {
		t.Fatalf("status without --server: %v, %s", err, out.String())
	}
}
