package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/rollout"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// blockingFetch is a fetch that records each batch of device IDs and holds every call until
// released; rows holds what it answers.
type blockingFetch struct {
	mu      sync.Mutex
	batches [][]string
	release chan struct{}
	rows    map[string]store.CheckIn
	err     error
}

func (f *blockingFetch) fetch(ctx context.Context, ids []string) (map[string]store.CheckIn, error) {
	f.mu.Lock()
	f.batches = append(f.batches, slices.Clone(ids))
	f.mu.Unlock()
	<-f.release
	return f.rows, f.err
}

func (f *blockingFetch) calls() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

func (b *checkInReads) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

type readResult struct {
	device string
	c      store.CheckIn
	err    error
}

// TestCheckInReadsBatch holds both readers in the database and checks that the check-ins
// arriving meanwhile are answered by batches of at most checkInBatch distinct devices, each
// with its own row, and that a row of another tenant or no row at all is an unregistered device.
func TestCheckInReadsBatch(t *testing.T) {
	f := &blockingFetch{release: make(chan struct{}), rows: map[string]store.CheckIn{}}
	for i := range 300 {
		id := fmt.Sprintf("dev-%03d", i)
		f.rows[id] = store.CheckIn{TenantID: "acme", GroupID: "grp-" + id, Named: true, Release: "1.0." + fmt.Sprint(i)}
	}
	f.rows["foreign"] = store.CheckIn{TenantID: "globex", GroupID: "grp-globex", Named: true}
	b := &checkInReads{fetch: f.fetch}
	ctx := context.Background()

	results := make(chan readResult, 400)

	read := func(device string) {
		c, err := b.read(ctx, "acme", device)
		results <- readResult{device, c, err}
	}
	// The first two check-ins find a free reader each and go to the database alone.
	for i := range checkInReaders {
		go read(fmt.Sprintf("dev-%03d", i))
		testenv.WaitFor(t, "a reader in the database", func() bool { return len(f.calls()) == i+1 })
	}
	// Everything after queues: 300 devices (dev-000 again among them), a foreign device, an
	// unknown one.
	var queued []string
	for i := range 300 {
		queued = append(queued, fmt.Sprintf("dev-%03d", i))
	}
	queued = append(queued, "dev-000", "foreign", "missing")
	for _, d := range queued {
		go read(d)
	}
	testenv.WaitFor(t, "the check-ins to queue", func() bool { return b.queued() == len(queued) })
	close(f.release)

	got := map[string][]readResult{}
	for range checkInReaders + len(queued) {
		r := <-results
		got[r.device] = append(got[r.device], r)
	}
	for device, rs := range got {
		for _, r := range rs {
			switch device {
			case "foreign", "missing":
				if !errors.Is(r.err, ErrUnregistered) {
					t.Errorf("%s: err %v, want ErrUnregistered", device, r.err)
				}
			default:
				if r.err != nil || r.c != f.rows[device] {
					t.Errorf("%s: got %+v, %v; want %+v", device, r.c, r.err, f.rows[device])
				}
			}
		}
	}
	if n := len(got["dev-000"]); n != 3 {
		t.Errorf("dev-000 answered %d times, want 3", n)
	}

	calls := f.calls()
	var sizes []int
	for _, ids := range calls[checkInReaders:] {
		sizes = append(sizes, len(ids))
		if len(ids) > checkInBatch {
			t.Errorf("a batch of %d devices, more than %d", len(ids), checkInBatch)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("device %s twice in one batch", id)
			}
			seen[id] = true
		}
	}
	// Each free reader takes all it may from the queue: the 303 queued check-ins take full
	// batches and one for the rest (dev-000's two queued check-ins may share one).
	if want := checkInReaders + (len(queued)+checkInBatch-1)/checkInBatch; len(calls) != want {
		t.Errorf("%d queries for %d check-ins (batches %v), want %d", len(calls), checkInReaders+len(queued), sizes, want)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running != 0 || len(b.queue) != 0 {
		t.Errorf("after the storm: %d readers running, %d queued; want none", b.running, len(b.queue))
	}
}

// TestCheckInReadsErrors checks that a failed query fails every check-in of its batch, and that
// a check-in whose request ends while it waits returns at once.
func TestCheckInReadsErrors(t *testing.T) {
	down := errors.New("connection refused")
	f := &blockingFetch{release: make(chan struct{}), err: down}
	b := &checkInReads{fetch: f.fetch}
	errs := make(chan error, checkInReaders+1)
	for i := range checkInReaders + 1 {
		go func() {
			_, err := b.read(context.Background(), "acme", fmt.Sprint("device-", i))
			errs <- err
		}()
		if i < checkInReaders {
			testenv.WaitFor(t, "a reader in the database", func() bool { return len(f.calls()) == i+1 })
		}
	}
	testenv.WaitFor(t, "a read to queue", func() bool { return b.queued() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		_, err := b.read(ctx, "acme", "d")
		ended <- err
	}()
	testenv.WaitFor(t, "the fourth read to queue", func() bool { return b.queued() == 2 })
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("ended request: err %v, want context.Canceled", err)
	}

	close(f.release)
	for range checkInReaders + 1 {
		if err := <-errs; !errors.Is(err, down) {
			t.Errorf("err %v, want the query's error", err)
		}
	}
}

// TestCheckInBatchedPostgres runs the batched query on PostgreSQL against the one-device query
// it stands for, from many concurrent check-ins: devices with and without director metadata,
// a device of another tenant asked for under this one, and an unknown device.
func TestCheckInBatchedPostgres(t *testing.T) {
	f := newFixture(t, "postgres")
	if f.svc.reads == nil {
		t.Fatal("the PostgreSQL service does not batch check-in reads")
	}
	ctx := context.Background()
	f.keysInit()
	other, err := f.st.CreateTenant(ctx, store.System, f.tenant.ID, "globex")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.st.GroupByName(ctx, f.tenant.ID, "gateway", "Production")
	if err != nil {
		t.Fatal(err)
	}
	devices := []string{f.device}
	for i := 1; i < 40; i++ {
		id := fmt.Sprintf("%064x", i)
		if _, err := storetest.DB(f.st).Exec(`INSERT INTO devices (id, tenant_id, state, attestation, current_release, target_release, created_at, updated_at)
			VALUES ($1, $2, 'claimed', '', '', '', 1, 1)`, id, f.tenant.ID); err != nil {
			t.Fatal(err)
		}
		devices = append(devices, id)
	}
	foreign := fmt.Sprintf("%064x", 999)
	if _, err := storetest.DB(f.st).Exec(`INSERT INTO devices (id, tenant_id, state, attestation, current_release, target_release, created_at, updated_at)
		VALUES ($1, $2, 'claimed', '', '', '', 1, 1)`, foreign, other.ID); err != nil {
		t.Fatal(err)
	}
	// Half the devices are in the group the deployment names, and the director follows it
	// for them; the other half have no group and no metadata.
	if _, err := storetest.DB(f.st).Exec(`UPDATE devices SET product_id = $1, group_id = $2 WHERE id = ANY($3)`, g.ProductID, g.ID, devices[:20]); err != nil {
		t.Fatal(err)
	}
	f.release("1.0.0", binary(3, 4<<10))
	if _, err := f.st.CreateDeployment(ctx, store.System, f.tenant.ID, store.DeploymentSpec{Product: "gateway", Group: "Production",
		Release: "1.0.0", Plan: rollout.DefaultPlan(), Criteria: rollout.DefaultCriteria(), Emergency: true}); err != nil {
		t.Fatal(err)
	}
	for _, d := range devices[:20] {
		if _, err := f.svc.DirectorFile(ctx, f.tenant.ID, d, "timestamp.json"); err != nil {
			t.Fatal(err)
		}
	}

	asked := append(slices.Clone(devices), foreign, "no-such-device")
	want := map[string]readResult{}
	for _, d := range asked {
		c, err := readCheckIn(ctx, f.st, f.tenant.ID, d, false)
		want[d] = readResult{d, c, err}
	}
	if !want[devices[0]].c.Named || !want[devices[0]].c.HasTimestamp || want[devices[30]].c.Named {
		t.Fatalf("fixture: %+v / %+v", want[devices[0]].c, want[devices[30]].c)
	}
	results := make(chan readResult, 10*len(asked))
	for range 10 {
		for _, d := range asked {
			go func() {
				c, err := f.svc.reads.read(ctx, f.tenant.ID, d)
				results <- readResult{d, c, err}
			}()
		}
	}
	for range 10 * len(asked) {
		r := <-results
		w := want[r.device]
		if (w.err == nil) != (r.err == nil) || (w.err != nil && !errors.Is(r.err, ErrUnregistered)) || r.c != w.c {
			t.Errorf("%s: batched %+v, %v; one query %+v, %v", r.device, r.c, r.err, w.c, w.err)
		}
	}
	if !errors.Is(want[foreign].err, ErrUnregistered) || !errors.Is(want["no-such-device"].err, ErrUnregistered) {
		t.Errorf("one query: foreign %v, unknown %v; want ErrUnregistered", want[foreign].err, want["no-such-device"].err)
	}
}
