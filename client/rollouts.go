package client

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// CreateDeploymentRequest asks for a deployment of a signed release to a device group. Phases
// are cumulative percentages ("10,50,100"), Soak a duration ("1h", "2d"); both take the
// server's defaults when empty and must be empty with Emergency, which offers the release to
// every device at once.
type CreateDeploymentRequest struct {
	Product   string `json:"product"`
	Group     string `json:"group"`
	Release   string `json:"release"`
	Phases    string `json:"phases,omitempty"`
	Soak      string `json:"soak,omitempty"`
	Emergency bool   `json:"emergency,omitempty"`
	// Criteria overrides the default abort criteria by name (doc/rollouts.md): on_failure
	// (pause or abort), max_install_failures and max_timeouts (a share such as "5%", or "off"),
	// min_sample, report_deadline (such as "24h" or "2d"), max_crash_ratio and
	// max_new_signature_devices (a number, or "off").
	Criteria map[string]string `json:"criteria,omitempty"`
}

// DeploymentActionRequest carries the reason for a pause, resume or abort.
type DeploymentActionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// DeploymentPhase is one phase of a deployment's plan.
type DeploymentPhase struct {
	Percent      float64 `json:"percent"`
	MinSoak      string  `json:"min_soak"`
	MinReporting float64 `json:"min_reporting"`
	// Cutoff is the device position (rollout.Position) below which a device is in this phase
	// or an earlier one, fitted to the group when the deployment was created; 0 when unset.
	Cutoff   float64    `json:"cutoff,omitempty"`
	OpenedAt *time.Time `json:"opened_at,omitempty"`
	Devices  int        `json:"devices"`
	Reported int        `json:"reported"`
}

// Finding is one abort criterion a deployment crossed.
type Finding struct {
	Criterion string  `json:"criterion"`
	Action    string  `json:"action"`
	Reason    string  `json:"reason"`
	Observed  float64 `json:"observed"`
	Threshold float64 `json:"threshold"`
	Sample    int     `json:"sample"`
	Signature string  `json:"signature,omitempty"`
}

// DeploymentProgress counts a deployment's devices now and what the criteria say.
type DeploymentProgress struct {
	Devices   int `json:"devices"`
	Offered   int `json:"offered"`
	Pending   int `json:"pending"`
	Installed int `json:"installed"`
	Failed    int `json:"failed"`
	// Interrupted counts the devices whose install of the release a power cut or another
	// interruption stopped at least once; they are not failures, and are pending or installed
	// as well.
	Interrupted int       `json:"interrupted"`
	TimedOut    int       `json:"timed_out"`
	Decision    string    `json:"decision"`
	Findings    []Finding `json:"findings,omitempty"`
}

// Deployment is a release going to a device group, phase by phase. Phase is 1-based.
type Deployment struct {
	ID              string            `json:"id"`
	Seq             int64             `json:"seq"`
	Product         string            `json:"product"`
	Group           string            `json:"group"`
	Release         string            `json:"release"`
	PreviousRelease string            `json:"previous_release,omitempty"`
	Emergency       bool              `json:"emergency"`
	State           string            `json:"state"`
	Phase           int               `json:"phase"`
	Phases          []DeploymentPhase `json:"phases"`
	Criteria        json.RawMessage   `json:"criteria,omitempty"`
	// CriteriaSummary is the abort criteria on one line, for people.
	CriteriaSummary string              `json:"criteria_summary,omitempty"`
	Reason          string              `json:"reason,omitempty"`
	CreatedBy       string              `json:"created_by"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	Progress        *DeploymentProgress `json:"progress,omitempty"`
}

// DeploymentFilter narrows a deployment listing.
type DeploymentFilter struct {
	Product, Group, State string
}

// FailureGroup gathers the crash reports that share a signature in one product.
type FailureGroup struct {
	ID           string     `json:"id"`
	Product      string     `json:"product"`
	Signature    string     `json:"signature"`
	Program      string     `json:"program"`
	Component    string     `json:"component,omitempty"`
	FaultType    string     `json:"fault_type"`
	Frames       []string   `json:"frames"`
	Message      string     `json:"message,omitempty"`
	Status       string     `json:"status"`
	Count        int64      `json:"count"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	NewInRelease string     `json:"new_in_release"`
	Releases     []string   `json:"releases"`
	ResolvedAt   *time.Time `json:"resolved_at,omitempty"`
	RegressedIn  string     `json:"regressed_in,omitempty"`
}

// FailureCount counts a group's reports on one release in one deployment phase (0 outside).
type FailureCount struct {
	Release      string `json:"release"`
	DeploymentID string `json:"deployment_id,omitempty"`
	Phase        int    `json:"phase"`
	Reports      int64  `json:"reports"`
}

// FailureGroupDetail is a group with its counts, its device count and its latest report.
type FailureGroupDetail struct {
	FailureGroup
	Devices int64           `json:"devices"`
	Counts  []FailureCount  `json:"counts"`
	Sample  json.RawMessage `json:"sample"`
}

// FailureFilter narrows a failure group listing.
type FailureFilter struct {
	Product, Release, Status string
}

// ReleaseShare is how many devices run a release.
type ReleaseShare struct {
	Release string  `json:"release"`
	Devices int     `json:"devices"`
	Share   float64 `json:"share"`
}

// ReleaseCoverage is one release's milestones since its first deployment.
type ReleaseCoverage struct {
	Release string    `json:"release"`
	Since   time.Time `json:"since"`
	// Preinstalled is a version devices ran before Rampart managed them, which no release of the
	// product names: it never spread, and has no milestones.
	Preinstalled bool                `json:"preinstalled,omitempty"`
	Milestones   []CoverageMilestone `json:"milestones"`
}

// Coverage is the fleet's releases now and each release's time to 50/90/99/100 %.
type Coverage struct {
	Product     string            `json:"product"`
	Group       string            `json:"group,omitempty"`
	At          time.Time         `json:"at"`
	Devices     int               `json:"devices"`
	Newest      string            `json:"newest"`
	NewestShare float64           `json:"newest_share"`
	PerRelease  []ReleaseShare    `json:"per_release"`
	Releases    []ReleaseCoverage `json:"releases"`
}

// CreateDeployment starts a deployment.
func (c *Client) CreateDeployment(ctx context.Context, req CreateDeploymentRequest) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "POST", "/api/v1/deployments", req, &out)
}

// ListDeployments lists the tenant's deployments in sequence order.
func (c *Client) ListDeployments(ctx context.Context, f DeploymentFilter, o ListOptions) (List[Deployment], error) {
	var out List[Deployment]
	q := url.Values{"product": {f.Product}, "group": {f.Group}, "state": {f.State}}
	return out, c.Do(ctx, "GET", "/api/v1/deployments"+listQuery(o, q), nil, &out)
}

// GetDeployment returns a deployment with its progress.
func (c *Client) GetDeployment(ctx context.Context, id string) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "GET", "/api/v1/deployments/"+esc(id), nil, &out)
}

// ActOnDeployment pauses, resumes or aborts a deployment; action is "pause", "resume" or
// "abort".
func (c *Client) ActOnDeployment(ctx context.Context, id, action string, req DeploymentActionRequest) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "POST", "/api/v1/deployments/"+esc(id)+"/"+esc(action), req, &out)
}

// ListFailureGroups lists the tenant's failure groups.
func (c *Client) ListFailureGroups(ctx context.Context, f FailureFilter, o ListOptions) (List[FailureGroup], error) {
	var out List[FailureGroup]
	q := url.Values{"product": {f.Product}, "release": {f.Release}, "status": {f.Status}}
	return out, c.Do(ctx, "GET", "/api/v1/failures"+listQuery(o, q), nil, &out)
}

// GetFailureGroup returns a failure group with its counts per release and phase.
func (c *Client) GetFailureGroup(ctx context.Context, id string) (FailureGroupDetail, error) {
	var out FailureGroupDetail
	return out, c.Do(ctx, "GET", "/api/v1/failures/"+esc(id), nil, &out)
}

// ResolveFailureGroup marks a failure group resolved.
func (c *Client) ResolveFailureGroup(ctx context.Context, id string) (FailureGroup, error) {
	var out FailureGroup
	return out, c.Do(ctx, "POST", "/api/v1/failures/"+esc(id)+"/resolve", struct{}{}, &out)
}

// GetCoverage returns a product's (or group's) coverage.
func (c *Client) GetCoverage(ctx context.Context, product, group string) (Coverage, error) {
	var out Coverage
	q := url.Values{"product": {product}, "group": {group}}
	return out, c.Do(ctx, "GET", "/api/v1/coverage"+listQuery(ListOptions{}, q), nil, &out)
}

// CoveragePoint is how many of the devices ran the release or a newer one at one instant.
type CoveragePoint struct {
	At      time.Time `json:"at"`
	Covered int       `json:"covered"`
	Devices int       `json:"devices"`
}

// CoverageSeries is a release's coverage over time, from its first deployment (Since) on, as
// steps: each reading holds until the next.
type CoverageSeries struct {
	Product string          `json:"product"`
	Group   string          `json:"group,omitempty"`
	Release string          `json:"release"`
	Since   time.Time       `json:"since"`
	Points  []CoveragePoint `json:"points"`
}

// GetCoverageSeries returns a release's coverage over time in a product or one of its groups.
func (c *Client) GetCoverageSeries(ctx context.Context, product, group, release string) (CoverageSeries, error) {
	var out CoverageSeries
	q := url.Values{"product": {product}, "group": {group}, "release": {release}}
	return out, c.Do(ctx, "GET", "/api/v1/coverage/series"+listQuery(ListOptions{}, q), nil, &out)
}
