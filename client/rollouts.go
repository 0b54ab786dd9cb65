package client

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// DeploymentPhase is one phase of a deployment's plan.
type DeploymentPhase struct {
	// Percent is the cumulative share of the group offered the release once the phase is open.
	Percent      float64    `json:"percent"`
	MinSoak      string     `json:"min_soak"`
	MinReporting float64    `json:"min_reporting"` // share in [0, 1]
	OpenedAt     *time.Time `json:"opened_at,omitempty"`
	// Devices and Reported count the phase's devices and those with an outcome (show only).
	Devices  int `json:"devices"`
	Reported int `json:"reported"`
}

// Finding is one abort criterion that crossed its threshold.
type Finding struct {
	Criterion string  `json:"criterion"`
	Action    string  `json:"action"`
	Reason    string  `json:"reason"`
	Observed  float64 `json:"observed"`
	Threshold float64 `json:"threshold"`
	Sample    int     `json:"sample"`
	Signature string  `json:"signature,omitempty"`
}

// DeploymentTally counts a deployment's devices, as the criteria saw them at the last
// evaluation.
type DeploymentTally struct {
	Devices                int     `json:"devices"`
	Offered                int     `json:"offered"`
	Pending                int     `json:"pending"`
	Installed              int     `json:"installed"`
	Failed                 int     `json:"failed"`
	TimedOut               int     `json:"timed_out"`
	WindowReported         int     `json:"window_reported"`
	WindowFailed           int     `json:"window_failed"`
	WindowTimedOut         int     `json:"window_timed_out"`
	NewCrashes             int     `json:"new_crashes"`
	NewExposureHours       float64 `json:"new_exposure_hours"`
	NewCrashedDevices      int     `json:"new_crashed_devices"`
	PreviousCrashes        int     `json:"previous_crashes"`
	PreviousExposureHours  float64 `json:"previous_exposure_hours"`
	ReportedShareOfOffered float64 `json:"reported_share"`
}

// Deployment is a release sent to a device group in phases.
type Deployment struct {
	ID              string            `json:"id"`
	Seq             int64             `json:"seq"`
	Product         string            `json:"product"`
	Group           string            `json:"group"`
	Release         string            `json:"release"`
	PreviousRelease string            `json:"previous_release,omitempty"`
	Emergency       bool              `json:"emergency"`
	State           string            `json:"state"` // active, paused, aborted, completed
	Phase           int               `json:"phase"` // 1-based index of the highest open phase
	Phases          []DeploymentPhase `json:"phases"`
	// Criteria are the abort criteria (the format of doc/rollouts.md).
	Criteria  json.RawMessage `json:"criteria"`
	Reason    string          `json:"reason,omitempty"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	// Tally and Findings are computed now (show, create and the operator verbs).
	Tally    *DeploymentTally `json:"tally,omitempty"`
	Findings []Finding        `json:"findings,omitempty"`
}

// CreateDeploymentRequest starts a deployment. Phases are cumulative percentages (default
// 10, 50, 100); Soak is a Go duration or whole days ("2d"; default 1h). Emergency offers the
// release to every device of the group at once.
type CreateDeploymentRequest struct {
	Product   string    `json:"product"`
	Group     string    `json:"group"`
	Release   string    `json:"release"`
	Phases    []float64 `json:"phases,omitempty"`
	Soak      string    `json:"soak,omitempty"`
	Emergency bool      `json:"emergency,omitempty"`
}

// DeploymentActionRequest pauses, resumes or aborts a deployment, with an optional reason.
type DeploymentActionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// DeploymentFilter narrows a deployment listing.
type DeploymentFilter struct {
	Product string
	Group   string
	State   string
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

// GetDeployment returns a deployment with its tally and findings now; id is the deployment's
// ID or its sequence number.
func (c *Client) GetDeployment(ctx context.Context, id string) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "GET", "/api/v1/deployments/"+esc(id), nil, &out)
}

// PauseDeployment stops offering the release until it is resumed.
func (c *Client) PauseDeployment(ctx context.Context, id, reason string) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "POST", "/api/v1/deployments/"+esc(id)+"/pause", DeploymentActionRequest{Reason: reason}, &out)
}

// ResumeDeployment resumes a paused deployment; the criteria judge only new evidence.
func (c *Client) ResumeDeployment(ctx context.Context, id, reason string) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "POST", "/api/v1/deployments/"+esc(id)+"/resume", DeploymentActionRequest{Reason: reason}, &out)
}

// AbortDeployment ends a deployment for good.
func (c *Client) AbortDeployment(ctx context.Context, id, reason string) (Deployment, error) {
	var out Deployment
	return out, c.Do(ctx, "POST", "/api/v1/deployments/"+esc(id)+"/abort", DeploymentActionRequest{Reason: reason}, &out)
}

// FailureCount counts a failure group's reports on one release, in one deployment phase.
type FailureCount struct {
	Release      string `json:"release"`
	DeploymentID string `json:"deployment_id,omitempty"`
	Phase        int    `json:"phase"` // 1-based; 0 outside a deployment
	Reports      int64  `json:"reports"`
}

// FailureGroup gathers the crash reports of one signature within a product.
type FailureGroup struct {
	ID          string     `json:"id"`
	Product     string     `json:"product"`
	Signature   string     `json:"signature"`
	Program     string     `json:"program"`
	Component   string     `json:"component"`
	FaultType   string     `json:"fault_type"`
	Frames      []string   `json:"frames"`
	Message     string     `json:"message,omitempty"`
	Status      string     `json:"status"` // open, resolved
	Reports     int64      `json:"reports"`
	FirstSeen   time.Time  `json:"first_seen"`
	LastSeen    time.Time  `json:"last_seen"`
	NewIn       string     `json:"new_in"`
	Releases    []string   `json:"releases"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
	RegressedIn string     `json:"regressed_in,omitempty"`
	RegressedAt *time.Time `json:"regressed_at,omitempty"`
	// Show only: counts per release and phase, distinct devices, and the latest report.
	Counts  []FailureCount  `json:"counts,omitempty"`
	Devices int64           `json:"devices,omitempty"`
	Sample  json.RawMessage `json:"sample,omitempty"`
}

// FailureFilter narrows a failure group listing.
type FailureFilter struct {
	Product string
	Release string
	Status  string
}

// ListFailureGroups lists the tenant's failure groups.
func (c *Client) ListFailureGroups(ctx context.Context, f FailureFilter, o ListOptions) (List[FailureGroup], error) {
	var out List[FailureGroup]
	q := url.Values{"product": {f.Product}, "release": {f.Release}, "status": {f.Status}}
	return out, c.Do(ctx, "GET", "/api/v1/failures"+listQuery(o, q), nil, &out)
}

// GetFailureGroup returns one failure group with its counts and a sample report.
func (c *Client) GetFailureGroup(ctx context.Context, id string) (FailureGroup, error) {
	var out FailureGroup
	return out, c.Do(ctx, "GET", "/api/v1/failures/"+esc(id), nil, &out)
}

// ResolveFailureGroup marks a failure group resolved.
func (c *Client) ResolveFailureGroup(ctx context.Context, id string) (FailureGroup, error) {
	var out FailureGroup
	return out, c.Do(ctx, "POST", "/api/v1/failures/"+esc(id)+"/resolve", nil, &out)
}

// FailureIngest is the device API's answer to a batch of crash reports.
type FailureIngest struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	NewGroups  int `json:"new_groups"`
	Regressed  int `json:"regressed"`
}

// ReleaseCount is how many devices run one release.
type ReleaseCount struct {
	Release string  `json:"release"`
	Devices int     `json:"devices"`
	Share   float64 `json:"share"`
}

// Milestone is when a release (or a newer one) first reached a share of the fleet.
type Milestone struct {
	Threshold float64    `json:"threshold"` // share in (0, 1]
	Reached   bool       `json:"reached"`
	At        *time.Time `json:"at,omitempty"`
	// AfterSeconds is how long after the release's first deployment it was reached.
	AfterSeconds float64 `json:"after_seconds,omitempty"`
}

// ReleaseCoverage is one release's milestones, measured from its first deployment.
type ReleaseCoverage struct {
	Release    string      `json:"release"`
	Since      time.Time   `json:"since"`
	Milestones []Milestone `json:"milestones"`
}

// Coverage is the fleet coverage of a product or one of its groups.
type Coverage struct {
	Product     string            `json:"product"`
	Group       string            `json:"group,omitempty"`
	At          time.Time         `json:"at"`
	Devices     int               `json:"devices"`
	PerRelease  []ReleaseCount    `json:"per_release"`
	Newest      string            `json:"newest,omitempty"`
	NewestShare float64           `json:"newest_share"`
	Releases    []ReleaseCoverage `json:"releases"`
}

// GetCoverage returns the coverage of a product, or of one of its groups when group is set.
func (c *Client) GetCoverage(ctx context.Context, product, group string) (Coverage, error) {
	var out Coverage
	return out, c.Do(ctx, "GET", "/api/v1/products/"+esc(product)+"/coverage"+listQuery(ListOptions{}, url.Values{"group": {group}}), nil, &out)
}
