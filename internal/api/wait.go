package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/wake"
)

// wakeDemoted wakes the devices a revocation demoted (release.Release.Demoted), so that they
// attest again at once; their wait answers Reattest.
func (a *API) wakeDemoted(deviceIDs []string) {
	if len(deviceIDs) > 0 {
		n := a.wake.WakeWaiting(deviceIDs...)
		a.log.Info("revocation demoted devices", "devices", len(deviceIDs), "woken", n)
	}
}

// Wake is the hub of waiting devices, for tests.
func (a *API) Wake() *wake.Hub { return a.wake }

// deviceWait holds the request until the device is woken or ?timeout= (a duration such as 300s
// or 5m; default 5m, at most 15m) passes. Update-only certificates may wait too: an emergency
// fix must reach devices that run revoked software.
func (a *API) deviceWait(w http.ResponseWriter, r *http.Request, d *device) error {
	timeout := deviceapi.DefaultWait
	if v := r.URL.Query().Get("timeout"); v != "" {
		t, err := time.ParseDuration(v)
		if err != nil {
			if n, nerr := strconv.Atoi(strings.TrimSpace(v)); nerr == nil {
				t, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil || t < time.Second || t > deviceapi.MaxWait {
			return badRequest("timeout must be a duration from 1s to %s, such as 300s", deviceapi.MaxWait)
		}
		timeout = t
	}
	if d.demoted {
		// Told at once, whichever replica demoted it and whether or not it was waiting then;
		// but only once per certificate, so that an agent that does not act on it waits as
		// usual instead of calling again and again.
		first, err := a.store.TellDemoted(r.Context(), d.cert.SerialNumber.Text(16))
		if err != nil {
			return internal(err)
		}
		if first {
			writeJSON(w, http.StatusOK, deviceapi.WaitAnswer{Woken: true, Reattest: true})
			return nil
		}
	}
	tag := wake.GroupTag(d.tenantID, d.record.ProductName, d.record.GroupName)
	d.record = store.Device{} // not needed past here: the wait holds no more of the registry than its tag
	err := a.wake.WaitFor(r.Context(), d.id, tag, timeout)
	switch {
	case err == nil:
		// The wake may be a revocation's (wakeDemoted): look again.
		if d.profile == ca.ProfileNormal {
			if err := a.checkDemoted(r.Context(), d); err != nil {
				return err
			}
			if d.demoted {
				if _, err := a.store.TellDemoted(r.Context(), d.cert.SerialNumber.Text(16)); err != nil {
					return internal(err)
				}
			}
		}
		writeJSON(w, http.StatusOK, deviceapi.WaitAnswer{Woken: true, Reattest: d.demoted})
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, wake.ErrReplaced):
		writeJSON(w, http.StatusOK, deviceapi.WaitAnswer{Woken: false, Reattest: d.demoted})
	case errors.Is(err, wake.ErrFull):
		w.Header().Set("Retry-After", "60")
		return newError(http.StatusServiceUnavailable, CodeBusy, "too many devices are waiting on this server; check in again later")
	case r.Context().Err() != nil:
		return nil // the device hung up
	default:
		return internal(err)
	}
	return nil
}
