package api

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/attest"
	"github.com/rampartsec/rampart/internal/deviceapi"
	pub "github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/store"
)

// The attestation routes: enrolment, challenges and attestation on the device API (see
// doc/attestation.md), and claims, preauthorisations, manufacturer CAs and the product policy
// on the admin API. The protocol itself lives in attest.Service.

// deviceEnroll answers /device/v1/enroll: no certificate, the identity key is the credential.
func (a *API) deviceEnroll(w http.ResponseWriter, r *http.Request, _ *device) error {
	req, err := deviceapi.DecodeEnrollRequest(r.Body)
	if err != nil {
		return wireError(err, "enrolment request")
	}
	resp, err := a.attest.Enroll(r.Context(), req)
	if err != nil {
		return attestError(err)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// deviceChallenge answers /device/v1/challenge with a fresh nonce for a renewal. Update-only
// devices may call it: they must be able to attest again once they have updated.
func (a *API) deviceChallenge(w http.ResponseWriter, r *http.Request, d *device) error {
	ch, err := a.attest.Challenge(r.Context(), d.id)
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, ch)
	return nil
}

// deviceAttest answers /device/v1/attest. With a client certificate the evidence must be the
// certificate's device's; without one (the first attestation, or a device whose certificate
// lapsed) the quote by the enrolled identity key is the proof, and the per-device rate limit
// applies to the device the evidence names. A refused attestation is 403 with the reason; an
// admitted one is 200 with the certificate (update-only when the software is contraindicated).
func (a *API) deviceAttest(w http.ResponseWriter, r *http.Request, d *device) error {
	decode := deviceapi.DecodeEvidence // older agents' JSON
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == deviceapi.ContentTypeEvidence {
		decode = deviceapi.DecodeEvidenceFramed
	}
	ev, err := decode(r.Body)
	if err != nil {
		return wireError(err, "evidence")
	}
	var callerTenant string
	if d != nil {
		if ev.DeviceID != d.id {
			return forbidden("the evidence names device %s but the client certificate is device %s's", ev.DeviceID, d.id)
		}
		callerTenant = d.tenantID
	} else if ok, wait := a.deviceLimit.Allow(ev.DeviceID, a.now()); !ok {
		return tooMany(w, wait, "too many requests from device %s", ev.DeviceID)
	}
	resp, err := a.attest.Attest(r.Context(), ev, callerTenant)
	if err != nil {
		return attestError(err)
	}
	if len(resp.Certificate) == 0 {
		last := resp.Reasons[len(resp.Reasons)-1]
		return newError(http.StatusForbidden, CodeAttestationRefused, "attestation refused (%s): %s", last.Code, last.Detail)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// wireError maps a wire decoding error: what names the message, and wire's public sentence says
// what is wrong with it.
func wireError(err error, what string) error {
	if errors.Is(err, deviceapi.ErrTooLarge) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: what + " is too large", Err: err}
	}
	e := fromPublic(err)
	if e.Code != CodeInternal {
		e.Message = "invalid " + what + ": " + e.Message
	}
	return e
}

func attestError(err error) error {
	switch {
	case errors.Is(err, attest.ErrBadRequest):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "enrolment refused: the identity key or TPM attestation is invalid", Err: err}
	case errors.Is(err, attest.ErrUnknownDevice):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "device is not enrolled; enrol it first", Err: err}
	case errors.Is(err, attest.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: CodeEKUntrusted, Message: "the device's EK is not certified by a manufacturer CA the tenant trusts, nor preauthorised", Err: err}
	}
	return internal(err)
}

func (a *API) claimDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := checkDeviceID(id); err != nil {
		return err
	}
	var req client.ClaimDeviceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Product == "" {
		return badRequest("product is required")
	}
	if req.Group == "" {
		req.Group = store.DefaultGroups[0]
	}
	d, err := a.attest.Claim(r.Context(), p.actor(), p.tenantID, id, req.Product, req.Group)
	switch {
	case errors.Is(err, attest.ErrUnknownDevice), errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: "device " + id + " has not enrolled, or product " + req.Product + " has no group " + req.Group, Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "device " + id + " is already claimed", Err: err}
	case err != nil:
		return attestError(err)
	}
	writeJSON(w, http.StatusOK, deviceOut(d))
	return nil
}

// moveDevice moves a claimed device to another group of its product, and wakes it if it waits
// on the long-poll so that it checks in against its new group's deployment now.
func (a *API) moveDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := checkDeviceID(id); err != nil {
		return err
	}
	var req client.MoveDeviceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Group == "" {
		return badRequest("group is required")
	}
	d, err := a.store.MoveDevice(r.Context(), p.actor(), p.tenantID, id, req.Group)
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: "device " + id + " is not claimed by this tenant, or its product has no group " + req.Group, Err: err}
	} else if err != nil {
		return internal(err)
	}
	a.wake.Wake(id)
	writeJSON(w, http.StatusOK, deviceOut(d))
	return nil
}

func (a *API) preauthorize(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.PreauthorizeRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.Kind != store.PreauthEK && req.Kind != store.PreauthKey {
		return badRequest("kind must be %q or %q", store.PreauthEK, store.PreauthKey)
	}
	if err := checkDeviceID(req.Hash); err != nil {
		return badRequest("hash must be 64 lowercase hex digits (a SHA-256)")
	}
	if req.Product == "" {
		return badRequest("product is required")
	}
	if req.Group == "" {
		req.Group = store.DefaultGroups[0]
	}
	if err := a.store.Preauthorize(r.Context(), p.actor(), p.tenantID, req.Kind, req.Hash, req.Product, req.Group); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return conflict("%s hash %s is already preauthorised", req.Kind, req.Hash)
		}
		return storeError(err, "group "+req.Group+" in product "+req.Product)
	}
	writeJSON(w, http.StatusCreated, req)
	return nil
}

func (a *API) setManufacturerCAs(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.ManufacturerCAs
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if _, err := attest.ParseManufacturerCAs([]byte(req.PEM)); err != nil {
		return badRequest("pem must hold one or more CA certificates in PEM")
	}
	if err := a.store.SetManufacturerCAs(r.Context(), p.actor(), p.tenantID, req.PEM); err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (a *API) getManufacturerCAs(w http.ResponseWriter, r *http.Request, p *principal) error {
	pem, err := a.store.ManufacturerCAs(r.Context(), p.tenantID)
	if err != nil {
		return storeError(err, "manufacturer CA bundle")
	}
	writeJSON(w, http.StatusOK, client.ManufacturerCAs{PEM: pem})
	return nil
}

func (a *API) setAttestationPolicy(w http.ResponseWriter, r *http.Request, p *principal) error {
	product := r.PathValue("product")
	var req client.AttestationPolicy
	if err := decode(w, r, &req); err != nil {
		return err
	}
	pol := store.AttestationPolicy{AcceptSoftware: req.AcceptSoftware, RequireSecureBoot: req.RequireSecureBoot,
		RequireBootLog: req.RequireBootLog, BootDigests: req.BootDigests}
	if err := a.store.SetAttestationPolicy(r.Context(), p.actor(), p.tenantID, product, pol); err != nil {
		if pub.KindOf(err) == pub.Invalid {
			return fromPublic(err) // a boot digest that is not one, too many of them
		}
		return storeError(err, "product "+product)
	}
	if req.BootDigests == nil {
		req.BootDigests = []string{}
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (a *API) getAttestationPolicy(w http.ResponseWriter, r *http.Request, p *principal) error {
	product := r.PathValue("product")
	pol, err := a.store.AttestationPolicy(r.Context(), p.tenantID, product)
	if err != nil {
		return storeError(err, "product "+product)
	}
	writeJSON(w, http.StatusOK, client.AttestationPolicy{AcceptSoftware: pol.AcceptSoftware, RequireSecureBoot: pol.RequireSecureBoot,
		RequireBootLog: pol.RequireBootLog, BootDigests: pol.BootDigests})
	return nil
}

func (a *API) listAttestations(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := checkDeviceID(id); err != nil {
		return err
	}
	if _, err := a.store.DeviceByID(r.Context(), p.tenantID, id); err != nil {
		return storeError(err, "device "+id)
	}
	recs, err := a.store.ListAttestations(r.Context(), id, 100)
	if err != nil {
		return internal(err)
	}
	out := client.List[client.Attestation]{Items: []client.Attestation{}}
	for _, rec := range recs {
		if rec.TenantID != p.tenantID {
			continue // verdicts from before the claim, or on another tenant's certificate
		}
		at := client.Attestation{ID: rec.ID, At: rec.At, Status: rec.Status, Granted: rec.Granted, CertSerial: rec.CertSerial, Rule: rec.Rule}
		if len(rec.BootState) > 0 {
			at.Boot = new(client.BootState)
			if err := json.Unmarshal(rec.BootState, at.Boot); err != nil {
				return internal(err)
			}
		}
		if rec.CertNotAfter != nil {
			t := rec.CertNotAfter.UTC()
			at.CertNotAfter = &t
		}
		for _, reason := range rec.Reasons {
			at.Reasons = append(at.Reasons, client.AttestationReason{Code: reason.Code, Detail: reason.Detail})
		}
		out.Items = append(out.Items, at)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// releaseReferences derives reference values from a product's signed and revoked releases.
type releaseReferences struct{ rel *release.Service }

func (r releaseReferences) References(ctx context.Context, tenantID, product string) (map[string]attest.Reference, error) {
	images, err := r.rel.ReleasedImages(ctx, tenantID, product)
	if err != nil {
		return nil, err
	}
	out := make([]attest.ReleasedImage, 0, len(images))
	for _, im := range images {
		out = append(out, attest.ReleasedImage{SHA256: im.SHA256, Component: im.Component, Release: im.Release, Revoked: im.Revoked,
			Newest: im.Newest, Authenticode: im.Authenticode})
	}
	return attest.DeriveReferences(out), nil
}

// emptyReferences knows no software: without a release service every measured component is
// unknown and devices get update-only certificates.
type emptyReferences struct{}

func (emptyReferences) References(context.Context, string, string) (map[string]attest.Reference, error) {
	return nil, nil
}
