package failure

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// GroupStatus is whether a failure group is being worked on.
type GroupStatus string

// Group statuses.
const (
	GroupOpen     GroupStatus = "open"
	GroupResolved GroupStatus = "resolved"
)

// Mark is what one new report means for its group.
type Mark string

// Marks.
const (
	MarkNew       Mark = "new"       // the first report of this signature: the group is new in its release
	MarkKnown     Mark = "known"     // another report of a known group
	MarkRegressed Mark = "regressed" // a resolved group came back on a release it was not seen on before
)

// ErrAlreadyResolved is returned when resolving a resolved group.
var ErrAlreadyResolved = errors.New("failure group is already resolved")

// Group gathers the reports that share a signature within one product of
// one tenant.
type Group struct {
	Signature string      `json:"signature"`
	Fault     Fault       `json:"fault"`
	Status    GroupStatus `json:"status"`
	Count     int64       `json:"count"`
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
	// FirstRelease is the release of the first report: the group is new
	// in that release.
	FirstRelease string `json:"first_release"`
	// Releases lists, sorted, every release the group was reported on.
	Releases []string `json:"releases"`
	// ResolvedAt and ResolvedReleases record the last resolution: the
	// releases seen until then are expected to keep crashing until their
	// devices update, so only a report from another release reopens it.
	ResolvedAt       time.Time `json:"resolved_at,omitzero"`
	ResolvedReleases []string  `json:"resolved_releases,omitempty"`
	// RegressedIn and RegressedAt record the last time it came back.
	RegressedIn string    `json:"regressed_in,omitempty"`
	RegressedAt time.Time `json:"regressed_at,omitzero"`
}

// NewGroup starts a group from its first report.
func NewGroup(f Fault, release string, at time.Time) Group {
	return Group{
		Signature: f.Signature(), Fault: f, Status: GroupOpen, Count: 1,
		FirstSeen: at, LastSeen: at, FirstRelease: release, Releases: []string{release},
	}
}

// NewIn reports whether the group first appeared in the release.
func (g Group) NewIn(release string) bool { return g.FirstRelease == release }

// Observe records one more report on the release at the given time and
// says what it means. A resolved group reopens when the report comes from
// a release it had not been seen on when it was resolved.
func (g Group) Observe(release string, at time.Time) (Group, Mark) {
	mark := MarkKnown
	g.Count++
	if at.After(g.LastSeen) {
		g.LastSeen = at
	}
	if at.Before(g.FirstSeen) {
		g.FirstSeen = at
	}
	if i, found := slices.BinarySearch(g.Releases, release); !found {
		g.Releases = slices.Insert(slices.Clone(g.Releases), i, release)
	}
	if g.Status == GroupResolved && !slices.Contains(g.ResolvedReleases, release) {
		g.Status, g.RegressedIn, g.RegressedAt = GroupOpen, release, at
		mark = MarkRegressed
	}
	return g, mark
}

// Resolve marks the group resolved (a fix shipped). Reports from the
// releases it was seen on so far do not reopen it.
func (g Group) Resolve(at time.Time) (Group, error) {
	if g.Status == GroupResolved {
		return g, fmt.Errorf("failure.Resolve: %w", ErrAlreadyResolved)
	}
	g.Status, g.ResolvedAt = GroupResolved, at
	g.ResolvedReleases = slices.Clone(g.Releases)
	return g, nil
}
