package api

import (
	"errors"
	"net/http"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/ratelimit"
	"github.com/rampartsec/rampart/internal/store"
)

// Crash report limits per device: a device files about one report every ten seconds on average,
// with bursts of two full batches, so a crash loop cannot flood its tenant's groups; refused
// batches stay in the agent's outbox for a later try.
const (
	DefaultReportRate  = 0.1
	DefaultReportBurst = 2 * deviceapi.MaxCrashBatchReports
)

// DefaultReportLimit is the per-device crash report limiter the API uses unless given one.
func DefaultReportLimit() *ratelimit.Limiter {
	return ratelimit.New(DefaultReportRate, DefaultReportBurst, 1_000_000)
}

// deviceFailures accepts a batch of crash reports (deviceapi.CrashBatch) from an attested device and
// files them into its tenant's failure groups. The body is decoded strictly and capped; a bad
// report refuses the whole batch with its index and reason (400, or 413 over a size limit),
// which the agent drops instead of retrying; a device over its report limit gets 429 and keeps
// the batch. The device's own identity decides the tenant, so a device can never file reports
// anywhere else.
func (a *API) deviceFailures(w http.ResponseWriter, r *http.Request, d *device) error {
	batch, err := deviceapi.DecodeCrashBatch(http.MaxBytesReader(w, r.Body, deviceapi.MaxCrashBatchBytes+1))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "crash report too large: batch is over %d bytes", deviceapi.MaxCrashBatchBytes)
		}
		if e := fromPublic(err); e.Code != CodeInternal {
			return e // the decoder's sentence: the index and the field at fault
		}
		return badRequest("the crash report batch could not be read")
	}
	if ok, wait := a.reportLimit.AllowN(d.id, len(batch.Reports), a.now()); !ok {
		return tooMany(w, wait, "too many crash reports from device %s; keep them and retry later", d.id)
	}
	in, err := a.store.AddFailureReports(r.Context(), d.tenantID, d.id, batch.Reports)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return forbidden("this device is not in a device group; claim it into a product first")
		}
		return storeError(err, "crash reports")
	}
	if in.Accepted > 0 {
		a.evidence(d.tenantID, d.id) // the group's deployment is checked now, not at the next tick
	}
	writeJSON(w, http.StatusOK, deviceapi.FailureAnswer{Accepted: in.Accepted, Duplicates: in.Duplicates})
	return nil
}
