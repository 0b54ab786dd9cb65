package command

import (
	"bytes"
	"context"
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
		{"no server", []string{"run", "--once"}, "--server and --ca-file are required"},
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
		})
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, "1.2.3", &out, &out); err != nil || out.String() != "rampart-agent 1.2.3\n" {
		t.Fatalf("version: %q, %v", out.String(), err)
	}
}
