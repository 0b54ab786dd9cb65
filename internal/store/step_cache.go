package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/rollout"
)

// The stepper's memory of each active deployment's group (stepCache): a step reads again only
// the members that changed since the last step read the group, and the whole group every
// fullRefreshEvery, or when it has no memory of it, the deployment resumed (its evidence window
// moved) or the clock went back.
const (
	fullRefreshEvery = 10 * time.Minute
	// changeMargin reaches back before the last read for changes stamped before it that
	// committed after it: a write stamps its rows inside its transaction, which may commit a
	// little later.
	changeMargin = time.Minute
)

// stepCache holds, per active deployment, the snapshot of its group the last step read.
type stepCache struct {
	mu sync.Mutex
	m  map[string]*groupMemory // deployment ID
}

// groupMemory is one deployment's group as its last step read it.
type groupMemory struct {
	evidenceSince time.Time
	readAt        time.Time // the store's clock when that step began to read
	fullAt        time.Time // when the whole group was last read
	devices       []rollout.DeviceStatus
	index         map[string]int // device ID -> position in devices
	known         map[string]bool
}

func newGroupMemory(snap rollout.Snapshot, d Deployment, now time.Time) *groupMemory {
	g := &groupMemory{evidenceSince: d.EvidenceSince, readAt: now, fullAt: now, devices: snap.Devices,
		index: make(map[string]int, len(snap.Devices)), known: snap.KnownSignatures}
	for i, dev := range g.devices {
		g.index[dev.DeviceID] = i
	}
	return g
}

// patch replaces what it knows of the listed devices with fresh, their state read again: a
// device in fresh is updated or added, one missing from it is no longer a member.
func (g *groupMemory) patch(ids []string, fresh []rollout.DeviceStatus) {
	got := make(map[string]int, len(fresh))
	for i, dev := range fresh {
		got[dev.DeviceID] = i
	}
	for _, id := range ids {
		i, known := g.index[id]
		j, member := got[id]
		switch {
		case member && known:
			g.devices[i] = fresh[j]
		case member:
			g.index[id] = len(g.devices)
			g.devices = append(g.devices, fresh[j])
		case known:
			last := len(g.devices) - 1
			g.devices[i] = g.devices[last]
			g.index[g.devices[i].DeviceID] = i
			g.devices[last] = rollout.DeviceStatus{}
			g.devices = g.devices[:last]
			delete(g.index, id)
		}
	}
}

// forget drops the memory of deployments that are not in keep (no longer active).
func (c *stepCache) forget(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if !keep[id] {
			delete(c.m, id)
		}
	}
}

// changedMembers lists the devices whose state as a member of the deployment may have changed
// since the given time: those with a coverage event in the group (they joined or left it, or
// changed release), an outcome reported in the deployment, or a crash report received. It also
// reports whether the tenant received crash reports, which may add signatures known on the
// previous release. Each read goes through an index on its time.
func changedMembers(ctx context.Context, q querier, d Deployment, since time.Time) ([]string, bool, error) {
	at := micros(since)
	ids, err := queryIDs(ctx, q, `SELECT device_id FROM coverage_events WHERE group_id = $1 AND at >= $2
		UNION SELECT device_id FROM deployment_devices WHERE deployment_id = $3 AND reported_at >= $2`, d.GroupID, at, d.ID)
	if err != nil {
		return nil, false, err
	}
	crashed, err := queryIDs(ctx, q, `SELECT DISTINCT device_id FROM failure_reports WHERE tenant_id = $1 AND received_at >= $2`, d.TenantID, at)
	if err != nil {
		return nil, false, err
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range crashed {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	return ids, len(crashed) > 0, nil
}

// notMembers returns those of ids that are in the deployment's group but not yet its members.
func notMembers(ctx context.Context, q querier, d Deployment, ids []string) ([]string, error) {
	var out []string
	for len(ids) > 0 {
		n := min(inChunk, len(ids))
		in, args := inList([]any{d.GroupID, d.TenantID, d.ID}, ids[:n])
		got, err := queryIDs(ctx, q, `SELECT dv.id FROM devices dv WHERE dv.group_id = $1 AND dv.tenant_id = $2 AND dv.id IN (`+in+`)
			AND NOT EXISTS (SELECT 1 FROM deployment_devices dd WHERE dd.deployment_id = $3 AND dd.device_id = dv.id)`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		ids = ids[n:]
	}
	return out, nil
}

// stillInGroup returns those of ids that are in the deployment's group now.
func stillInGroup(ctx context.Context, q querier, d Deployment, ids []string) ([]string, error) {
	var out []string
	for len(ids) > 0 {
		n := min(inChunk, len(ids))
		in, args := inList([]any{d.GroupID, d.TenantID}, ids[:n])
		got, err := queryIDs(ctx, q, `SELECT id FROM devices WHERE group_id = $1 AND tenant_id = $2 AND id IN (`+in+`)`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		ids = ids[n:]
	}
	return out, nil
}

// inChunk bounds the IDs of one IN list.
const inChunk = 500

// inList appends ids to args and returns the placeholders that name them.
func inList(args []any, ids []string) (string, []any) {
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(", ")
		}
		args = append(args, id)
		fmt.Fprintf(&sb, "$%d", len(args))
	}
	return sb.String(), args
}

// readGroup brings the memory of the deployment's group up to date as of now, inside the read
// transaction tx: the whole group when full, else only the members that changed since the last
// read. It returns the memory to keep.
func (s *Store) readGroup(ctx context.Context, tx *sql.Tx, d Deployment, g *groupMemory, full bool, now time.Time) (*groupMemory, error) {
	if full {
		snap, err := s.snapshot(ctx, tx, d, now, nil)
		if err != nil {
			return nil, err
		}
		return newGroupMemory(snap, d, now), nil
	}
	ids, crashes, err := changedMembers(ctx, tx, d, g.readAt.Add(-changeMargin))
	if err != nil {
		return nil, err
	}
	for rest := ids; len(rest) > 0; {
		n := min(inChunk, len(rest))
		snap, err := s.snapshot(ctx, tx, d, now, rest[:n])
		if err != nil {
			return nil, err
		}
		g.patch(rest[:n], snap.Devices)
		rest = rest[n:]
	}
	if crashes {
		if g.known, err = knownSignatures(ctx, tx, d); err != nil {
			return nil, err
		}
	}
	g.readAt = now
	return g, nil
}

// snapshot reads the group as the deployment sees it: its current members with their outcome,
// what they run since when, their crashes in the evidence window, and the crash signatures
// already known on the previous release. With only, it reads those of the devices listed that
// are members, and no signatures.
func (s *Store) snapshot(ctx context.Context, q querier, d Deployment, now time.Time, only []string) (rollout.Snapshot, error) {
	snap := rollout.Snapshot{Now: now, KnownSignatures: map[string]bool{}}
	in, args := "", []any{d.ID, d.GroupID, d.TenantID}
	if only != nil {
		in, args = inList(args, only)
		in = " AND dv.id IN (" + in + ")"
	}
	rows, err := q.QueryContext(ctx, `SELECT dv.id, dv.current_release, dd.install, dd.joined_at, dd.reported_at
		FROM devices dv JOIN deployment_devices dd ON dd.device_id = dv.id AND dd.deployment_id = $1
		WHERE dv.group_id = $2 AND dv.tenant_id = $3`+in+` ORDER BY dv.id`, args...)
	if err != nil {
		return snap, err
	}
	index := map[string]int{}
	for rows.Next() {
		var ds rollout.DeviceStatus
		var current, install string
		var joined, reported sql.NullInt64
		if err := rows.Scan(&ds.DeviceID, &current, &install, &joined, &reported); err != nil {
			rows.Close()
			return snap, err
		}
		ds.Install = rollout.InstallState(install)
		if joined.Valid {
			ds.JoinedAt = fromMicros(joined.Int64)
		}
		if reported.Valid {
			ds.ReportedAt = fromMicros(reported.Int64)
		}
		switch current {
		case d.Release:
			ds.Running = rollout.RunningNew
		case d.PreviousRelease:
			ds.Running = rollout.RunningPrevious
		default:
			ds.Running = rollout.RunningOther
		}
		index[ds.DeviceID] = len(snap.Devices)
		snap.Devices = append(snap.Devices, ds)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	// When each device started running what it runs: its last coverage event in the group.
	in, args = "", []any{d.TenantID, d.GroupID}
	if only != nil {
		in, args = inList(args, only)
		in = " AND device_id IN (" + in + ")"
	}
	rows, err = q.QueryContext(ctx, `SELECT device_id, MAX(at) FROM coverage_events WHERE tenant_id = $1 AND group_id = $2`+in+`
		GROUP BY device_id`, args...)
	if err != nil {
		return snap, err
	}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return snap, err
		}
		if i, ok := index[id]; ok {
			snap.Devices[i].RunningSince = fromMicros(at)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	// Crashes of the group's devices in the evidence window, on the release each runs now.
	in, args = "", []any{d.TenantID, d.GroupID, micros(d.EvidenceSince)}
	if only != nil {
		in, args = inList(args, only)
		in = " AND fr.device_id IN (" + in + ")"
	}
	rows, err = q.QueryContext(ctx, `SELECT fr.device_id, fr.signature, fr.crashed_at, fr.release_version FROM failure_reports fr
		JOIN devices dv ON dv.id = fr.device_id
		WHERE fr.tenant_id = $1 AND dv.group_id = $2 AND fr.crashed_at >= $3 AND fr.release_version = dv.current_release`+in,
		args...)
	if err != nil {
		return snap, err
	}
	for rows.Next() {
		var id, sig, rel string
		var at int64
		if err := rows.Scan(&id, &sig, &at, &rel); err != nil {
			rows.Close()
			return snap, err
		}
		if i, ok := index[id]; ok {
			snap.Devices[i].Crashes = append(snap.Devices[i].Crashes, rollout.Crash{Signature: sig, At: fromMicros(at)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	if only == nil {
		if snap.KnownSignatures, err = knownSignatures(ctx, q, d); err != nil {
			return snap, err
		}
	}
	return snap, nil
}

// knownSignatures lists the crash signatures seen on the deployment's previous release.
func knownSignatures(ctx context.Context, q querier, d Deployment) (map[string]bool, error) {
	known := map[string]bool{}
	if d.PreviousRelease != "" {
		rows, err := q.QueryContext(ctx, `SELECT DISTINCT signature FROM failure_reports
			WHERE tenant_id = $1 AND product_id = $2 AND release_version = $3`, d.TenantID, d.ProductID, d.PreviousRelease)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var sig string
			if err := rows.Scan(&sig); err != nil {
				rows.Close()
				return nil, err
			}
			known[sig] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return known, nil
}
