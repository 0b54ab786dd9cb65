package client

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// List is one page of a listing. Next is the cursor of the following page, empty on the last.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// ListOptions asks for one page: up to Limit items (the server caps it) after the cursor After.
type ListOptions struct {
	Limit int
	After string
}

// ErrorBody is the one error envelope every Rampart API answers with.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WhoAmI describes the caller's token.
type WhoAmI struct {
	TokenID string `json:"token_id"`
	Tenant  string `json:"tenant"`
	Role    string `json:"role"`
	Service bool   `json:"service"`
}

// Tenant is an organisation that owns products, devices and tokens.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateTenantRequest creates a tenant.
type CreateTenantRequest struct {
	Name string `json:"name"`
}

// Token is an API token. Secret is set only in the answer that creates it.
type Token struct {
	ID          string     `json:"id"`
	Tenant      string     `json:"tenant"`
	Description string     `json:"description"`
	Role        string     `json:"role"`
	Service     bool       `json:"service"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	Secret      string     `json:"secret,omitempty"`
}

// CreateTokenRequest creates a token. Tenant defaults to the caller's own; naming another tenant
// needs a service administrator's token.
type CreateTokenRequest struct {
	Tenant      string `json:"tenant,omitempty"`
	Role        string `json:"role"`
	Description string `json:"description,omitempty"`
}

// Product is a device model.
type Product struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	Groups      []Group   `json:"groups,omitempty"`
}

// CreateProductRequest creates a product with the default groups Development, Field Test and
// Production.
type CreateProductRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Group is a device group of a product.
type Group struct {
	ID          string    `json:"id"`
	Product     string    `json:"product"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Devices     int       `json:"devices"`
	CreatedAt   time.Time `json:"created_at"`
}

// CreateGroupRequest creates a device group in a product.
type CreateGroupRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Device is one device of the registry.
type Device struct {
	ID             string `json:"id"`
	Product        string `json:"product,omitempty"`
	Group          string `json:"group,omitempty"`
	State          string `json:"state"`
	Attestation    string `json:"attestation,omitempty"`
	CurrentRelease string `json:"current_release,omitempty"`
	TargetRelease  string `json:"target_release,omitempty"`
	// Install is the last install state the device reported (device show only).
	Install    *InstallStatus `json:"install,omitempty"`
	LastSeenAt *time.Time     `json:"last_seen_at,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// DeviceFilter narrows a device listing; every field is optional.
type DeviceFilter struct {
	Product string
	Group   string // within Product
	Release string // the release devices report running
	// Attestation is affirming, warning, contraindicated or none (never attested).
	Attestation string
	// UpdateOnly keeps devices limited to the update endpoints (contraindicated, or holding a
	// certificate a revocation demoted).
	UpdateOnly bool
	// Seen is online, overdue or offline.
	Seen string
	// IDPrefix keeps devices whose ID starts with it (lowercase hex).
	IDPrefix string
	// Sort is id (default), seen (newest first), stale (oldest first) or release.
	Sort string
}

// AuditRecord is one record of the tenant's hash-chained audit log.
type AuditRecord struct {
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Target   string          `json:"target"`
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// AuditVerification is the result of checking the tenant's audit chain.
type AuditVerification struct {
	Intact   bool   `json:"intact"`
	Records  int64  `json:"records"`  // records in the chain
	Verified int64  `json:"verified"` // records from the start that checked out before any problem
	Head     string `json:"head,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

// CA is a tenant's certificate authority, which relying parties trust for device certificates.
type CA struct {
	Tenant string `json:"tenant"`
	// TrustDomain is the SPIFFE trust domain of the tenant's device certificates, a DNS name.
	TrustDomain string    `json:"trust_domain"`
	Subject     string    `json:"subject"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	SHA256      string    `json:"sha256"`
	PEM         string    `json:"pem"`
}

// ClaimDeviceRequest claims an enrolled device into a product and group.
type ClaimDeviceRequest struct {
	Product string `json:"product"`
	Group   string `json:"group,omitempty"` // default Development
}

// MoveDeviceRequest moves a claimed device to another group of its product.
type MoveDeviceRequest struct {
	Group string `json:"group"`
}

// PreauthorizeRequest preauthorises a device by the SHA-256 of its EK ("ek") or of its identity
// key ("key", which is its device ID); it is claimed into product and group when it enrols.
type PreauthorizeRequest struct {
	Kind    string `json:"kind"`
	Hash    string `json:"hash"`
	Product string `json:"product"`
	Group   string `json:"group,omitempty"` // default Development
}

// ManufacturerCAs is the PEM bundle of TPM manufacturer CAs a tenant trusts for EK certificates.
type ManufacturerCAs struct {
	PEM string `json:"pem"`
}

// AttestationPolicy is a product's attestation policy.
type AttestationPolicy struct {
	// AcceptSoftware admits devices with a software attester (results are warnings).
	AcceptSoftware bool `json:"accept_software"`
	// RequireSecureBoot demands the firmware's boot log with Secure Boot enabled.
	RequireSecureBoot bool `json:"require_secure_boot"`
	// RequireBootLog demands the firmware's boot log: agent-only evidence gets an update-only
	// certificate, and every EFI application it loaded must be a known boot component.
	RequireBootLog bool `json:"require_boot_log"`
	// BootDigests are extra Authenticode SHA-256 digests (lowercase hex) of EFI binaries the
	// product accepts beside its releases' boot images.
	BootDigests []string `json:"boot_digests"`
}

// Attestation is one verifier result for a device.
type Attestation struct {
	ID           string              `json:"id"`
	At           time.Time           `json:"at"`
	Status       string              `json:"status"`  // affirming, warning, contraindicated
	Granted      string              `json:"granted"` // normal, update-only, none
	Reasons      []AttestationReason `json:"reasons,omitempty"`
	CertSerial   string              `json:"cert_serial,omitempty"`
	CertNotAfter *time.Time          `json:"cert_not_after,omitempty"`
	// Rule is what decided the status: the code of the first finding of the worst severity,
	// or all_known.
	Rule string `json:"rule,omitempty"`
	// Boot is the boot state the verified evidence showed; absent when it was refused early.
	Boot *BootState `json:"boot,omitempty"`
}

// BootState is what a device's verified evidence says about how it booted.
type BootState struct {
	Evidence   string `json:"evidence"` // measured_boot or agent_only
	LegacyPCRs bool   `json:"legacy_pcrs,omitempty"`
	SecureBoot bool   `json:"secure_boot"`
	// SecureBootUnreadable says why PCR 7's events showed no consistent Secure Boot state.
	SecureBootUnreadable string            `json:"secure_boot_unreadable,omitempty"`
	DB                   *SignatureDB      `json:"db,omitempty"`
	DBX                  *SignatureDB      `json:"dbx,omitempty"`
	Applications         []BootApplication `json:"applications,omitempty"`
	KernelCommandLine    string            `json:"kernel_command_line,omitempty"`
	IMA                  *IMAState         `json:"ima,omitempty"`
}

// SignatureDB summarises a UEFI signature database (db or dbx).
type SignatureDB struct {
	Certificates []string `json:"certificates,omitempty"`
	Hashes       int      `json:"hashes"`
	SHA256       string   `json:"sha256,omitempty"`
}

// BootApplication is an EFI application the firmware loaded, by Authenticode SHA-256, and the
// boot component it is known as.
type BootApplication struct {
	Digest string `json:"digest"`
	Known  string `json:"known,omitempty"`
}

// IMAState counts the IMA log's entries and which are released files.
type IMAState struct {
	Entries int `json:"entries"`
	Known   int `json:"known"`
	Unknown int `json:"unknown"`
}

// AttestationReason is one finding of the verifier.
type AttestationReason struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Fleet is the tenant's fleet at a glance: devices by attestation, by how recently they
// checked in and by release, and the open vulnerability reports by severity with their clocks.
type Fleet struct {
	Devices int `json:"devices"`
	// ByAttestation counts affirming, warning, update-only and none (never attested).
	ByAttestation map[string]int `json:"by_attestation"`
	// BySeen counts online, overdue and offline devices (OnlineWithin, OverdueWithin).
	BySeen map[string]int `json:"by_seen"`
	// ByRelease lists the releases devices run, most devices first, up to 20; OtherReleases
	// counts the devices on the rest.
	ByRelease     []ReleaseDevices `json:"by_release"`
	OtherReleases int              `json:"other_releases"`
	OnlineWithin  string           `json:"online_within"`
	OverdueWithin string           `json:"overdue_within"`
	OpenReports   []OpenReports    `json:"open_reports"`
	// CountedAt is when the device counts were taken: a server counts its devices at most once
	// every RecountEvery (15 s) per tenant and product filter, and answers from that count in
	// between. The open reports are read at each request.
	CountedAt    time.Time `json:"counted_at"`
	RecountEvery string    `json:"recount_every"`
}

// ReleaseDevices is how many devices run one release ("" for none reported yet).
type ReleaseDevices struct {
	Release string `json:"release"`
	Devices int    `json:"devices"`
}

// OpenReports counts the open reports (new, triaged, needs more information) of one severity
// ("" when not yet scored), with the oldest of each clock.
type OpenReports struct {
	Severity               string     `json:"severity"`
	Reports                int        `json:"reports"`
	Oldest                 time.Time  `json:"oldest"`
	AwaitingResponse       int        `json:"awaiting_response"`
	OldestAwaitingResponse *time.Time `json:"oldest_awaiting_response,omitempty"`
	AwaitingTriage         int        `json:"awaiting_triage"`
	OldestAwaitingTriage   *time.Time `json:"oldest_awaiting_triage,omitempty"`
}

// GetFleet returns the fleet overview; product, when not "", narrows the device counts to it.
func (c *Client) GetFleet(ctx context.Context, product string) (Fleet, error) {
	var out Fleet
	return out, c.Do(ctx, "GET", "/api/v1/fleet"+listQuery(ListOptions{}, url.Values{"product": {product}}), nil, &out)
}

// InstallReport is one install state a device reported.
type InstallReport struct {
	ID      string    `json:"id"`
	State   string    `json:"state"`
	Release string    `json:"release"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// DeviceCrash is one crash report a device filed.
type DeviceCrash struct {
	ReportID     string          `json:"report_id"`
	FailureGroup string          `json:"failure_group"`
	Signature    string          `json:"signature"`
	Release      string          `json:"release"`
	DeploymentID string          `json:"deployment_id,omitempty"`
	Phase        int             `json:"phase"`
	CrashedAt    time.Time       `json:"crashed_at"`
	ReceivedAt   time.Time       `json:"received_at"`
	Report       json.RawMessage `json:"report"`
}

// ListInstallReports lists a device's install reports, newest first.
func (c *Client) ListInstallReports(ctx context.Context, id string, o ListOptions) (List[InstallReport], error) {
	var out List[InstallReport]
	return out, c.Do(ctx, "GET", "/api/v1/devices/"+esc(id)+"/installs"+listQuery(o, nil), nil, &out)
}

// ListDeviceCrashes lists a device's crash reports, newest first.
func (c *Client) ListDeviceCrashes(ctx context.Context, id string, o ListOptions) (List[DeviceCrash], error) {
	var out List[DeviceCrash]
	return out, c.Do(ctx, "GET", "/api/v1/devices/"+esc(id)+"/crashes"+listQuery(o, nil), nil, &out)
}
