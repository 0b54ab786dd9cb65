package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// MeasurementLog is the agent's record of what it extended into the PCRs
// during the current boot. Each event is extended into its PCR first and
// recorded second, and the log is persisted after every event, so the log
// replays to the PCR values unless the device lost power between the two
// steps (the next boot starts a fresh log, as the PCRs reset).
type MeasurementLog struct {
	path   string
	BootID string            `json:"boot_id"`
	Events []deviceapi.Event `json:"events"`
}

// OpenLog loads the log at path for bootID. A log written during another
// boot is discarded: the PCRs it described were reset by the reboot.
func OpenLog(path, bootID string) (*MeasurementLog, error) {
	l := &MeasurementLog{path: path, BootID: bootID}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attest.OpenLog: %w", err)
	}
	var saved MeasurementLog
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("attest.OpenLog: %s: %w", path, err)
	}
	if saved.BootID == bootID {
		l.Events = saved.Events
	}
	return l, nil
}

// Measure extends digest (the component's SHA-256) into the PCR of its
// event type and records the event.
func (l *MeasurementLog) Measure(ctx context.Context, a Attester, t deviceapi.EventType, name, version string, digest []byte) error {
	pcr, ok := deviceapi.PCRFor(t)
	if l.Legacy() {
		// This boot began with an older agent: keep its layout until the reboot
		// resets the PCRs, so the log still replays.
		pcr, ok = deviceapi.LegacyPCRFor(t)
	}
	if !ok {
		return fmt.Errorf("attest.Measure: unknown event type %q", t)
	}
	if len(digest) != sha256.Size {
		return fmt.Errorf("attest.Measure: digest must be %d bytes", sha256.Size)
	}
	if len(l.Events) >= deviceapi.MaxEvents {
		return fmt.Errorf("attest.Measure: log already holds %d events", deviceapi.MaxEvents)
	}
	ev := deviceapi.Event{PCR: pcr, Digest: hex.EncodeToString(digest), Type: t, Name: name, Version: version}
	if err := a.Extend(ctx, pcr, digest); err != nil {
		return fmt.Errorf("attest.Measure: %w", err)
	}
	l.Events = append(l.Events, ev)
	if err := l.save(); err != nil {
		return fmt.Errorf("attest.Measure: %w", err)
	}
	return nil
}

// Legacy reports whether this boot's log was begun by an agent that extended
// the legacy PCRs 12-15 (deviceapi.LegacyPCRFor).
func (l *MeasurementLog) Legacy() bool {
	for _, ev := range l.Events {
		if ev.PCR != deviceapi.AgentPCR {
			return true
		}
	}
	return false
}

// QuotedPCRs returns the PCRs a quote covers for this log's layout.
func (l *MeasurementLog) QuotedPCRs() []int {
	if l.Legacy() {
		return deviceapi.LegacyQuotedPCRs
	}
	return deviceapi.QuotedPCRs
}

// MeasureFile hashes the file at path and measures it.
func (l *MeasurementLog) MeasureFile(ctx context.Context, a Attester, t deviceapi.EventType, name, version, path string) error {
	digest, err := FileDigest(path)
	if err != nil {
		return fmt.Errorf("attest.MeasureFile: %w", err)
	}
	return l.Measure(ctx, a, t, name, version, digest)
}

// FileDigest returns the SHA-256 of the file at path: the digest a release lists for an image.
func FileDigest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("attest.FileDigest: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("attest.FileDigest: %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// Measured reports whether an event with this type, name and digest is
// already in the log, so a restarted agent does not measure twice.
func (l *MeasurementLog) Measured(t deviceapi.EventType, name string, digest []byte) bool {
	d := hex.EncodeToString(digest)
	for _, ev := range l.Events {
		if ev.Type == t && ev.Name == name && ev.Digest == d {
			return true
		}
	}
	return false
}

func (l *MeasurementLog) save() error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("save log: %w", err)
	}
	return durable.WriteFile(l.path, b)
}
