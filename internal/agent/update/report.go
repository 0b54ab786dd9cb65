package update

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// HTTPReporter reports install states to the device API
// (POST <server>/device/v1/install-status) with the device's mTLS client.
type HTTPReporter struct {
	// URL is the full endpoint, e.g. https://server:8443/device/v1/install-status.
	URL    string
	Client *http.Client
}

// Report implements Reporter.
func (h *HTTPReporter) Report(ctx context.Context, s Status) error {
	reason := s.Reason
	if len(reason) > deviceapi.MaxInstallReason {
		reason = reason[:deviceapi.MaxInstallReason]
	}
	body, err := json.Marshal(deviceapi.InstallStatus{State: s.State, Release: s.Release, Reason: printable(reason)})
	if err != nil {
		return fmt.Errorf("update.HTTPReporter.Report: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("update.HTTPReporter.Report: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("update.HTTPReporter.Report: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("update.HTTPReporter.Report: server answered %s", resp.Status)
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
