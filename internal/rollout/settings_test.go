package rollout

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCriteriaWithSettings(t *testing.T) {
	c, err := DefaultCriteria().WithSettings(map[string]string{
		SettingMaxInstallFailures: "2%", SettingMinSample: "50", SettingReportDeadline: "2d", SettingMaxTimeouts: "0.2",
		SettingMaxCrashRatio: "1.5", SettingMaxNewSignatureDevices: "off", SettingOnFailure: "abort",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Criteria{
		InstallFailures: ShareLimit{MaxShare: 0.02, MinSample: 50, Action: ActionAbort},
		Timeouts:        TimeoutLimit{Deadline: 48 * time.Hour, MaxShare: 0.2, MinSample: 50, Action: ActionAbort},
		CrashRate:       CrashRateLimit{MaxRatio: 1.5, MinExposureHours: 24, MinCrashedDevices: 3, Significance: 0.01, Action: ActionAbort},
		NewSignature:    SignatureLimit{MaxDevices: 3, Action: ActionOff},
	}
	if c != want {
		t.Errorf("criteria\n got %+v\nwant %+v", c, want)
	}
	if got := c.String(); got != "install failures > 2% of ≥50 → abort; silent 2d > 20% of ≥50 → abort; crash rate > 1.5× the previous release → abort" {
		t.Errorf("summary %q", got)
	}
	if got := DefaultCriteria().String(); !strings.Contains(got, "silent 1d > 10% of ≥20 → pause") || !strings.Contains(got, "new crash signature on > 3 devices → pause") {
		t.Errorf("default summary %q", got)
	}
	if c, err := DefaultCriteria().WithSettings(nil); err != nil || c != DefaultCriteria() {
		t.Errorf("no settings: %+v, %v", c, err)
	}
}

func TestCriteriaSettingsRefused(t *testing.T) {
	for _, tt := range []struct{ name, value, msg string }{
		{"max_install_failure", "5%", "unknown setting"},
		{SettingMaxInstallFailures, "150%", "not a share"},
		{SettingMaxInstallFailures, "-0.1", "not a share"},
		{SettingMaxTimeouts, "lots", "not a share"},
		{SettingMinSample, "0", "at least 1"},
		{SettingReportDeadline, "30s", "between 1m"},
		{SettingReportDeadline, "90d", "between 1m"},
		{SettingMaxCrashRatio, "0.5", "at least 1"},
		{SettingMaxCrashRatio, "NaN", "at least 1"},
		{SettingMaxNewSignatureDevices, "-1", "whole number"},
		{SettingOnFailure, "explode", "pause or abort"},
		{SettingOnFailure, "off", "pause or abort"},
	} {
		_, err := DefaultCriteria().WithSettings(map[string]string{tt.name: tt.value})
		if !errors.Is(err, ErrInvalidCriteria) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("%s=%s: %v; want ErrInvalidCriteria naming the setting and %q", tt.name, tt.value, err, tt.msg)
		}
	}
}
