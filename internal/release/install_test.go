package release

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

func TestValidateInstall(t *testing.T) {
	tests := []struct {
		rep InstallReport
		ok  bool
	}{
		{InstallReport{State: "committed", Release: "1.1.0"}, true},
		{InstallReport{State: "failed", Reason: "health check failed:\tservice x"}, true},
		{InstallReport{State: "downloading"}, true},
		{InstallReport{State: "committed"}, false},
		{InstallReport{State: "rebooting"}, true},
		{InstallReport{State: "rolled_back", Release: "1.1.0", Reason: "rebooted into the old slot rootfs.0"}, true},
		{InstallReport{State: "rebooted"}, false},
		{InstallReport{State: "failed", Release: "v1"}, false},
		{InstallReport{State: "failed", Reason: "a\nb"}, false},
		{InstallReport{State: "failed", Reason: "\xff"}, false},
		{InstallReport{State: "failed", Reason: strings.Repeat("x", MaxReasonLength+1)}, false},
	}
	for _, tc := range tests {
		err := ValidateInstall(tc.rep)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateInstall(%+v) = %v, want ok %v", tc.rep, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateInstall error %v is not ErrInvalid", err)
		}
	}
}

// FuzzValidateInstall feeds arbitrary device reports to the validator:
// whatever it accepts must be safe to store and show.
func FuzzValidateInstall(f *testing.F) {
	f.Add("committed", "1.1.0", "")
	f.Add("failed", "2.0.0-rc1", "trial slot b booted 3 times")
	f.Add("failed", "", "\x00\x1b[31m")
	f.Fuzz(func(t *testing.T, state, rel, reason string) {
		if ValidateInstall(InstallReport{State: state, Release: rel, Reason: reason}) != nil {
			return
		}
		if rel != "" && !deviceapi.ValidVersion(rel) {
			t.Fatalf("accepted release %q", rel)
		}
		if len(reason) > MaxReasonLength || !utf8.ValidString(reason) || strings.ContainsAny(reason, "\x00\n\r\x1b") {
			t.Fatalf("accepted reason %q", reason)
		}
	})
}
