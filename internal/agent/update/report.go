package update

import (
	"context"
	"fmt"
	"net/http"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Caller is the agent's client of the device API (devclient.Client): one request with its
// deadline, status check and decoding.
type Caller interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// HTTPReporter reports install states to the device API
// (POST /device/v1/install-status) through the device's client.
type HTTPReporter struct {
	Client Caller
}

// Report implements Reporter.
func (h *HTTPReporter) Report(ctx context.Context, s Status) error {
	reason := s.Reason
	if len(reason) > deviceapi.MaxInstallReason {
		reason = reason[:deviceapi.MaxInstallReason]
	}
	in := deviceapi.InstallStatus{State: s.State, Release: s.Release, Reason: printable(reason)}
	if err := h.Client.Do(ctx, http.MethodPost, deviceapi.PathInstallStatus, in, nil); err != nil {
		return fmt.Errorf("update.HTTPReporter.Report: %w", err)
	}
	return nil
}

// printable drops control characters (and cuts a split UTF-8 sequence),
// which the server refuses.
func printable(s string) string {
	var b []rune
	for _, r := range s {
		if r == '\uFFFD' || (r < 0x20 && r != '\t') {
			continue
		}
		b = append(b, r)
	}
	return string(b)
}
