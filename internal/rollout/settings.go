package rollout

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/public"
)

// The names an operator sets abort criteria by (`rampart deployment create --max-install-failures
// 5% ...`, or the criteria object of POST /api/v1/deployments). A criterion set to "off" is
// disabled; on_failure, applied last, says what every criterion still on does when crossed.
const (
	SettingOnFailure              = "on_failure"                // pause or abort
	SettingMaxInstallFailures     = "max_install_failures"      // a share (5% or 0.05) or off
	SettingMinSample              = "min_sample"                // devices reported before shares are judged
	SettingReportDeadline         = "report_deadline"           // a duration (24h, 2d) after which a silent device timed out
	SettingMaxTimeouts            = "max_timeouts"              // a share or off
	SettingMaxCrashRatio          = "max_crash_ratio"           // crash rate against the previous release (2 = twice), or off
	SettingMaxNewSignatureDevices = "max_new_signature_devices" // devices a new crash signature may reach, or off
)

// Settings lists the setting names in the order they are applied.
var Settings = []string{SettingMaxInstallFailures, SettingMinSample, SettingReportDeadline, SettingMaxTimeouts,
	SettingMaxCrashRatio, SettingMaxNewSignatureDevices, SettingOnFailure}

// WithSettings returns the criteria with the named settings applied, validated. An unknown name
// or a value out of range is ErrInvalidCriteria, naming the setting.
func (c Criteria) WithSettings(settings map[string]string) (Criteria, error) {
	for name := range settings {
		if !slices.Contains(Settings, name) {
			return c, public.Errorf(public.Invalid, "%w: unknown setting %q (known: %s)", ErrInvalidCriteria, name, strings.Join(Settings, ", "))
		}
	}
	for _, name := range Settings {
		v, ok := settings[name]
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if err := c.set(name, v); err != nil {
			return c, public.Errorf(public.Invalid, "%w: %s %q: %s", ErrInvalidCriteria, name, v, err)
		}
	}
	return c, c.Validate()
}

func (c *Criteria) set(name, v string) error {
	off := strings.EqualFold(v, "off")
	switch name {
	case SettingOnFailure:
		a := Action(strings.ToLower(v))
		if a != ActionPause && a != ActionAbort {
			return fmt.Errorf("is not pause or abort")
		}
		for _, p := range []*Action{&c.InstallFailures.Action, &c.Timeouts.Action, &c.CrashRate.Action, &c.NewSignature.Action} {
			if *p != ActionOff {
				*p = a
			}
		}
	case SettingMaxInstallFailures:
		return setShare(&c.InstallFailures.MaxShare, &c.InstallFailures.Action, v, off)
	case SettingMaxTimeouts:
		return setShare(&c.Timeouts.MaxShare, &c.Timeouts.Action, v, off)
	case SettingMinSample:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("is not a whole number of devices of at least 1")
		}
		c.InstallFailures.MinSample, c.Timeouts.MinSample = n, n
	case SettingReportDeadline:
		d, err := ParseSoak(v)
		if err != nil || d < time.Minute {
			return fmt.Errorf("is not a duration between 1m and %v, such as 24h or 2d", MaxSoak)
		}
		c.Timeouts.Deadline = d
	case SettingMaxCrashRatio:
		if off {
			c.CrashRate.Action = ActionOff
			return nil
		}
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(r) || math.IsInf(r, 0) || r < 1 {
			return fmt.Errorf("is not a ratio of at least 1 (2 means twice the previous release's crash rate)")
		}
		c.CrashRate.MaxRatio = r
	case SettingMaxNewSignatureDevices:
		if off {
			c.NewSignature.Action = ActionOff
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("is not a whole number of devices")
		}
		c.NewSignature.MaxDevices = n
	}
	return nil
}

// setShare sets a share limit, or turns its criterion off.
func setShare(share *float64, action *Action, v string, off bool) error {
	if off {
		*action = ActionOff
		return nil
	}
	s, err := parseShare(v)
	*share = s
	return err
}

// parseShare reads a share of devices: "5%" or "0.05".
func parseShare(v string) (float64, error) {
	s, pct := strings.CutSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if pct {
		f /= 100
	}
	if err != nil || !validShare(f) {
		return 0, fmt.Errorf("is not a share between 0%% and 100%% (such as 5%% or 0.05)")
	}
	return f, nil
}

// String summarises the criteria on one line, as `rampart deployment show` prints them.
func (c Criteria) String() string {
	var parts []string
	add := func(a Action, format string, args ...any) {
		if a == ActionOff {
			return
		}
		parts = append(parts, fmt.Sprintf(format, args...)+" → "+string(a))
	}
	add(c.InstallFailures.Action, "install failures > %s%% of ≥%d", formatPercent(c.InstallFailures.MaxShare), c.InstallFailures.MinSample)
	add(c.Timeouts.Action, "silent %s > %s%% of ≥%d", formatDuration(c.Timeouts.Deadline), formatPercent(c.Timeouts.MaxShare), c.Timeouts.MinSample)
	add(c.CrashRate.Action, "crash rate > %s× the previous release", strconv.FormatFloat(c.CrashRate.MaxRatio, 'f', -1, 64))
	add(c.NewSignature.Action, "a new crash signature on > %d devices", c.NewSignature.MaxDevices)
	if len(parts) == 0 {
		return "none (every criterion is off)"
	}
	return strings.Join(parts, "; ")
}

func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}
