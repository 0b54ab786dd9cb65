package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/release"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/token"
)

func (a *API) whoAmI(w http.ResponseWriter, r *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, client.WhoAmI{TokenID: p.tokenID, Tenant: p.tenantName, Role: string(p.role), Service: p.service})
	return nil
}

func tenantOut(t store.Tenant) client.Tenant {
	return client.Tenant{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt}
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ts, next, err := a.store.ListTenants(r.Context(), pg)
	if err != nil {
		return storeError(err, "tenant")
	}
	list(w, ts, next, tenantOut)
	return nil
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.CreateTenantRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := checkTenantName(req.Name); err != nil {
		return err
	}
	t, err := a.store.CreateTenant(r.Context(), p.actor(), p.tenantID, req.Name)
	if err != nil {
		return storeError(err, "tenant "+req.Name)
	}
	writeJSON(w, http.StatusCreated, tenantOut(t))
	return nil
}

func tokenOut(t store.Token) client.Token {
	return client.Token{ID: t.ID, Tenant: t.TenantName, Description: t.Description, Role: t.Role, Service: t.Service,
		CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy, RevokedAt: t.RevokedAt}
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ts, next, err := a.store.ListTokens(r.Context(), p.tenantID, pg)
	if err != nil {
		return storeError(err, "token")
	}
	list(w, ts, next, tokenOut)
	return nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.CreateTokenRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	role, err := token.ParseRole(req.Role)
	if err != nil {
		return fromPublic(err)
	}
	if err := checkDescription(req.Description); err != nil {
		return err
	}
	tenantID := p.tenantID
	if req.Tenant != "" && req.Tenant != p.tenantName {
		if !p.service {
			return forbidden("only a service administrator may create tokens for another tenant")
		}
		t, err := a.store.TenantByName(r.Context(), req.Tenant)
		if err != nil {
			return storeError(err, "tenant "+req.Tenant)
		}
		tenantID = t.ID
	}
	secret, hash := token.Generate()
	tok, err := a.store.CreateToken(r.Context(), p.actor(), p.tenantID, store.Token{TenantID: tenantID, Role: string(role), Description: req.Description}, hash)
	if err != nil {
		return storeError(err, "token")
	}
	out := tokenOut(tok)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	tok, err := a.store.RevokeToken(r.Context(), p.actor(), p.tenantID, id)
	if errors.Is(err, store.ErrConflict) {
		return conflict("token %s is already revoked", id)
	}
	if err != nil {
		return storeError(err, "token "+id)
	}
	writeJSON(w, http.StatusOK, tokenOut(tok))
	return nil
}

func productOut(p store.Product) client.Product {
	return client.Product{ID: p.ID, Name: p.Name, Description: p.Description, CreatedAt: p.CreatedAt}
}

func groupOut(g store.Group) client.Group {
	return client.Group{ID: g.ID, Product: g.ProductName, Name: g.Name, Description: g.Description, Devices: g.Devices, CreatedAt: g.CreatedAt}
}

func (a *API) listProducts(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ps, next, err := a.store.ListProducts(r.Context(), p.tenantID, pg)
	if err != nil {
		return storeError(err, "product")
	}
	list(w, ps, next, productOut)
	return nil
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.CreateProductRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := checkName("product", req.Name); err != nil {
		return err
	}
	if err := checkDescription(req.Description); err != nil {
		return err
	}
	prod, groups, err := a.store.CreateProduct(r.Context(), p.actor(), p.tenantID, req.Name, req.Description)
	if err != nil {
		return storeError(err, "product "+req.Name)
	}
	out := productOut(prod)
	for _, g := range groups {
		out.Groups = append(out.Groups, groupOut(g))
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request, p *principal) error {
	name := r.PathValue("product")
	prod, err := a.store.ProductByName(r.Context(), p.tenantID, name)
	if err != nil {
		return storeError(err, "product "+name)
	}
	out := productOut(prod)
	for pg := (store.Page{Limit: store.MaxPageSize}); ; {
		gs, next, err := a.store.ListGroups(r.Context(), p.tenantID, name, pg)
		if err != nil {
			return storeError(err, "product "+name)
		}
		for _, g := range gs {
			out.Groups = append(out.Groups, groupOut(g))
		}
		if next == "" {
			break
		}
		pg.After = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	name := r.PathValue("product")
	listFn := a.store.ListGroups
	switch r.URL.Query().Get("count") {
	case "", "true":
	case "false":
		listFn = a.store.ListGroupsUncounted
	default:
		return badRequest("count must be true or false")
	}
	gs, next, err := listFn(r.Context(), p.tenantID, name, pg)
	if err != nil {
		return storeError(err, "product "+name)
	}
	list(w, gs, next, groupOut)
	return nil
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req client.CreateGroupRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := checkName("group", req.Name); err != nil {
		return err
	}
	if err := checkDescription(req.Description); err != nil {
		return err
	}
	product := r.PathValue("product")
	g, err := a.store.CreateGroup(r.Context(), p.actor(), p.tenantID, product, req.Name, req.Description)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("product %s not found", product)
	case err != nil:
		return storeError(err, "group "+req.Name+" in product "+product)
	}
	writeJSON(w, http.StatusCreated, groupOut(g))
	return nil
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	product, name := r.PathValue("product"), r.PathValue("group")
	g, err := a.store.GroupByName(r.Context(), p.tenantID, product, name)
	if err != nil {
		return storeError(err, "group "+name+" in product "+product)
	}
	writeJSON(w, http.StatusOK, groupOut(g))
	return nil
}

func deviceOut(d store.Device) client.Device {
	return client.Device{ID: d.ID, Product: d.ProductName, Group: d.GroupName, State: d.State, Attestation: d.Attestation,
		CurrentRelease: d.CurrentRelease, TargetRelease: d.TargetRelease, LastSeenAt: d.LastSeenAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.DeviceFilter{Product: q.Get("product"), Group: q.Get("group"), Release: q.Get("release"), Attestation: q.Get("attestation"),
		Seen: q.Get("seen"), IDPrefix: q.Get("q"), Sort: q.Get("sort")}
	if f.Group != "" && f.Product == "" {
		return badRequest("group needs product: a group is named within a product")
	}
	switch q.Get("update_only") {
	case "", "false":
	case "true":
		f.UpdateOnly = true
	default:
		return badRequest("update_only must be true or false")
	}
	ds, next, err := a.store.ListDevices(r.Context(), p.tenantID, f, pg)
	if err != nil {
		what := "product " + f.Product
		if f.Group != "" {
			what = "group " + f.Group + " in product " + f.Product
		}
		return storeError(err, what)
	}
	list(w, ds, next, deviceOut)
	return nil
}

// fleet is the fleet overview: devices by attestation, check-in and release, and the open
// reports by severity.
func (a *API) fleet(w http.ResponseWriter, r *http.Request, p *principal) error {
	product := r.URL.Query().Get("product")
	f, countedAt, err := a.fleetCounts.get(r.Context(), a.store, a.store.Now, p.tenantID, product)
	if err != nil {
		return storeError(err, "product "+product)
	}
	open, err := a.store.OpenReportSummary(r.Context(), p.tenantID)
	if err != nil {
		return internal(err)
	}
	out := client.Fleet{Devices: f.Devices, ByAttestation: f.ByAttestation, BySeen: f.BySeen, OtherReleases: f.OtherReleases,
		OnlineWithin: store.DeviceOnlineWithin.String(), OverdueWithin: store.DeviceOverdueWithin.String(),
		CountedAt: countedAt.UTC(), RecountEvery: FleetCountsTTL.String(),
		ByRelease: []client.ReleaseDevices{}, OpenReports: []client.OpenReports{}}
	for _, c := range f.ByRelease {
		out.ByRelease = append(out.ByRelease, client.ReleaseDevices{Release: c.Release, Devices: c.Devices})
	}
	for _, o := range open {
		out.OpenReports = append(out.OpenReports, client.OpenReports{Severity: o.Severity, Reports: o.Reports, Oldest: o.Oldest,
			AwaitingResponse: o.AwaitingResponse, OldestAwaitingResponse: o.OldestAwaitingResponse,
			AwaitingTriage: o.AwaitingTriage, OldestAwaitingTriage: o.OldestAwaitingTriage})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := checkDeviceID(id); err != nil {
		return err
	}
	d, err := a.store.DeviceByID(r.Context(), p.tenantID, id)
	if err != nil {
		return storeError(err, "device "+id)
	}
	out := deviceOut(d)
	if a.releases != nil {
		rep, err := a.releases.LatestInstall(r.Context(), p.tenantID, id)
		switch {
		case err == nil:
			out.Install = &client.InstallStatus{State: rep.State, Release: rep.Release, Reason: rep.Reason, At: rep.At}
		case !errors.Is(err, release.ErrNotFound):
			return internal(err)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func auditOut(r audit.Record) client.AuditRecord {
	return client.AuditRecord{Seq: r.Seq, At: r.At, Actor: r.Actor, Action: r.Action, Target: r.Target,
		Details: []byte(r.Details), PrevHash: r.PrevHash, Hash: r.Hash}
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFilter{Action: q.Get("action"), Target: q.Get("target")}
	switch q.Get("order") {
	case "", "chain":
	case "newest":
		f.Newest = true
	default:
		return badRequest("order must be chain or newest")
	}
	recs, next, err := a.store.ListAudit(r.Context(), p.tenantID, f, pg)
	if err != nil {
		return storeError(err, "cursor")
	}
	list(w, recs, next, auditOut)
	return nil
}

func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request, p *principal) error {
	v, err := a.store.VerifyAudit(r.Context(), p.tenantID)
	if errors.Is(err, audit.ErrBroken) {
		writeJSON(w, http.StatusOK, client.AuditVerification{Intact: false, Records: v.Records, Verified: v.Verified, Problem: fromPublic(err).Message})
		return nil
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, client.AuditVerification{Intact: true, Records: v.Records, Verified: v.Verified, Head: v.Head})
	return nil
}

func (a *API) getCA(w http.ResponseWriter, r *http.Request, p *principal) error {
	auth, err := a.cas.Authority(r.Context(), p.tenantID, p.tenantName)
	if err != nil {
		return internal(err)
	}
	c := auth.Certificate()
	sum := sha256.Sum256(c.Raw)
	writeJSON(w, http.StatusOK, client.CA{Tenant: p.tenantName, TrustDomain: auth.TrustDomain(), Subject: c.Subject.String(), NotBefore: c.NotBefore.UTC(),
		NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]), PEM: string(auth.CertificatePEM())})
	return nil
}

func installOut(e store.InstallEntry) client.InstallReport {
	return client.InstallReport{ID: e.ID, State: e.State, Release: e.Release, Reason: e.Reason, At: e.At}
}

func (a *API) listInstalls(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := checkDeviceID(id); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	es, next, err := a.store.ListInstallReports(r.Context(), p.tenantID, id, pg)
	if err != nil {
		return storeError(err, "device "+id)
	}
	list(w, es, next, installOut)
	return nil
}

func crashOut(c store.DeviceCrash) client.DeviceCrash {
	return client.DeviceCrash{ReportID: c.ReportID, FailureGroup: c.GroupID, Signature: c.Signature, Release: c.Release, DeploymentID: c.DeploymentID,
		Phase: c.Phase, CrashedAt: c.CrashedAt, ReceivedAt: c.ReceivedAt, Report: json.RawMessage(c.Report)}
}

func (a *API) listDeviceCrashes(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if err := checkDeviceID(id); err != nil {
		return err
	}
	pg, err := page(r)
	if err != nil {
		return err
	}
	cs, next, err := a.store.ListDeviceCrashes(r.Context(), p.tenantID, id, pg)
	if err != nil {
		return storeError(err, "device "+id)
	}
	list(w, cs, next, crashOut)
	return nil
}
