package rollout_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/wake"
)

// fleetSize is the number of online agents: 1,000, or RAMPART_BENCH_DEVICES.
func fleetSize(b *testing.B) int {
	if v := os.Getenv("RAMPART_BENCH_DEVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("RAMPART_BENCH_DEVICES=%q is not a number of at least 100", v)
		}
		return n
	}
	return 1000
}

// stepEvery is the server's deployment stepper interval in the benchmark; it bounds how fast a
// phased plan with no soak opens its phases.
const stepEvery = 250 * time.Millisecond

// benchFleet is a real server (rate limits off: every agent shares 127.0.0.1) with product lamp,
// signed releases and N claimed devices holding certificates from the tenant's CA.
type benchFleet struct {
	*clitest.Fleet
	releases int

	installed atomic.Int64 // install reports the server accepted
	checkins  atomic.Int64 // completed check-ins (director timestamp read)
	errors    atomic.Int64
}

func newBenchFleet(b *testing.B, kind string) *benchFleet {
	b.Helper()
	return &benchFleet{Fleet: clitest.StartFleet(b, cli.Root, func(c *server.Config) {
		c.StepInterval = stepEvery
		if kind == "postgres" {
			c.Database = storetest.PostgresURL(b)
		}
	})}
}

// release signs the next release 1.N.0 and returns its version.
func (f *benchFleet) release(b *testing.B) string {
	b.Helper()
	f.releases++
	v := fmt.Sprintf("1.%d.0", f.releases)
	f.Release(b, v, []byte("rootfs "+v))
	return v
}

// agent is a device reduced to the control plane of a rollout: hold the long-poll, on a wake-up
// read the director timestamp (which makes the server follow the group's deployment), read the
// targets when they changed, and report the named release committed. Downloads are left out:
// images are static, content-addressed files a CDN serves.
type agent struct {
	id     string
	http   *http.Client
	url    string
	lastTS []byte
	runs   string
}

// agents registers n claimed devices in the Production group and gives each its own mutual-TLS
// client with a certificate from the tenant's CA.
func (f *benchFleet) agents(b *testing.B, n int) []*agent {
	b.Helper()
	ctx := context.Background()
	auth, err := f.Service.CAs().Authority(ctx, f.TenantID, "default")
	if err != nil {
		b.Fatal(err)
	}
	pool := f.Roots
	var ids []string
	out := make([]*agent, n)
	for i := range out {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		sum := sha256.Sum256(der)
		id := hex.EncodeToString(sum[:])
		cert, err := auth.Issue(id, &key.PublicKey, ca.ProfileNormal, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}},
			MaxIdleConnsPerHost: 2}
		out[i] = &agent{id: id, url: f.URL, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
		ids = append(ids, id)
	}
	p, err := f.Service.Store().ProductByName(ctx, f.TenantID, "lamp")
	if err != nil {
		b.Fatal(err)
	}
	g, err := f.Service.Store().GroupByName(ctx, f.TenantID, "lamp", "Production")
	if err != nil {
		b.Fatal(err)
	}
	for len(ids) > 0 {
		chunk := ids[:min(200, len(ids))]
		ids = ids[len(chunk):]
		var sb strings.Builder
		args := []any{f.TenantID, p.ID, g.ID}
		sb.WriteString(`INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at) VALUES `)
		for i, id := range chunk {
			if i > 0 {
				sb.WriteString(", ")
			}
			args = append(args, id)
			fmt.Fprintf(&sb, "($%d, $1, $2, $3, 'claimed', 'affirming', '', '', 1, 1)", len(args))
		}
		if _, err := storetest.DB(f.Service.Store()).ExecContext(ctx, sb.String(), args...); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

func (a *agent) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// checkIn reads the director timestamp and, when the director names a new release, reports it
// committed.
func (a *agent) checkIn(ctx context.Context, f *benchFleet) error {
	status, ts, err := a.do(ctx, "GET", "/device/v1/director/timestamp.json", nil)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound || (status == http.StatusOK && bytes.Equal(ts, a.lastTS)) {
		return nil
	}
	if status != http.StatusOK {
		return fmt.Errorf("timestamp.json: %d %s", status, ts)
	}
	a.lastTS = ts
	status, body, err := a.do(ctx, "GET", "/device/v1/director/targets.json", nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("targets.json: %d %v", status, err)
	}
	var targets struct {
		Signed struct {
			Targets map[string]struct {
				Custom struct {
					Release string `json:"release"`
				} `json:"custom"`
			} `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(body, &targets); err != nil {
		return err
	}
	release := ""
	for _, t := range targets.Signed.Targets {
		release = t.Custom.Release
	}
	if release == "" || release == a.runs {
		return nil
	}
	rep, _ := json.Marshal(client.InstallStatus{State: "committed", Release: release})
	status, body, err = a.do(ctx, "POST", "/device/v1/install-status", rep)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("install-status: %d %s %v", status, body, err)
	}
	a.runs = release
	f.installed.Add(1)
	return nil
}

// run checks in, then waits on the long-poll, until ctx ends.
func (a *agent) run(ctx context.Context, f *benchFleet) {
	for ctx.Err() == nil {
		if err := a.checkIn(ctx, f); err != nil && ctx.Err() == nil {
			f.errors.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
		f.checkins.Add(1)
		a.do(ctx, "GET", "/device/v1/wait?timeout=60s", nil)
	}
}

// BenchmarkRolloutReach99 measures, per iteration, the time from `POST /api/v1/deployments` of a
// new signed release until 99 % of N online agents (1,000, or RAMPART_BENCH_DEVICES) reported it
// committed, through the real server: the wake-up on the long-poll, the director following the
// deployment (signing each device's director metadata, audited), the targets read, and the
// install report (coverage event, deployment outcome, audit). The ceiling sub-benchmark wakes
// the same agents with no deployment and times until 99 % completed a check-in (the same TLS
// connections, wake-up and director read, nothing to sign or record).
func BenchmarkRolloutReach99(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			n := fleetSize(b)
			f := newBenchFleet(b, kind)
			setup := time.Now()
			agents := f.agents(b, n)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, a := range agents {
				wg.Go(func() { a.run(ctx, f) })
			}
			defer func() { cancel(); wg.Wait() }()
			hub := f.Service.Wake()
			waitAll := func() {
				for hub.Waiting() < n {
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitAll()
			b.Logf("%d agents registered and waiting after %v", n, time.Since(setup))
			target := int64(n * 99 / 100)

			b.Run("ceiling-checkin", func(b *testing.B) {
				for b.Loop() {
					base := f.checkins.Load()
					hub.WakeTagged(wake.GroupTag(f.TenantID, "lamp", "Production"), nil)
					for f.checkins.Load()-base < target {
						time.Sleep(time.Millisecond)
					}
					b.StopTimer()
					waitAll()
					b.StartTimer()
				}
			})
			for _, mode := range []struct {
				name string
				req  client.CreateDeploymentRequest
			}{
				{"emergency", client.CreateDeploymentRequest{Emergency: true}},
				{"phases=1,10,50,100/soak=0", client.CreateDeploymentRequest{Phases: "1,10,50,100", Soak: "0s"}},
			} {
				b.Run(mode.name, func(b *testing.B) {
					var last string
					for b.Loop() {
						b.StopTimer()
						if last != "" {
							if _, err := f.API.ActOnDeployment(ctx, last, "abort", client.DeploymentActionRequest{Reason: "benchmark iteration done"}); err != nil && !client.IsStatus(err, http.StatusConflict) {
								b.Fatal(err)
							}
						}
						req := mode.req
						req.Product, req.Group, req.Release = "lamp", "Production", f.release(b)
						waitAll()
						base := f.installed.Load()
						b.StartTimer()
						start := time.Now()
						d, err := f.API.CreateDeployment(ctx, req)
						if err != nil {
							b.Fatal(err)
						}
						last = d.ID
						for f.installed.Load()-base < target {
							time.Sleep(time.Millisecond)
						}
						b.ReportMetric(time.Since(start).Seconds(), "s-to-99%")
						b.StopTimer()
						for f.installed.Load()-base < int64(n) {
							time.Sleep(5 * time.Millisecond)
						}
						b.StartTimer()
					}
					if e := f.errors.Load(); e > 0 {
						b.Errorf("%d agent check-ins failed", e)
					}
				})
			}
		})
	}
}
