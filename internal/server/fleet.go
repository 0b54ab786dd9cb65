package server

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rampartsec/rampart/internal/store"
)

// FleetCacheTTL is how long one reading of the fleet's state serves scrapes: a scrape within
// it costs no query, so any number of scrapers (or replicas' scrapes) cost one pass of aggregate
// queries per replica and interval.
const FleetCacheTTL = 15 * time.Second

// fleetCollector exports the fleet's state, read from the database at scrape time (cached
// for FleetCacheTTL). The database, not each replica's memory, is the truth: every replica
// exports the same figures, they survive restarts, and they need no code on the request paths.
type fleetCollector struct {
	store *store.Store
	log   *slog.Logger
	// waiting counts the devices on this replica's long-poll (wake.Hub.Waiting).
	waiting func() int

	mu    sync.Mutex
	at    time.Time // wall clock of the last reading
	fleet store.Fleet
	err   error
}

func newFleetCollector(st *store.Store, log *slog.Logger, waiting func() int) *fleetCollector {
	return &fleetCollector{store: st, log: log, waiting: waiting}
}

var (
	descDevicesAttestation = prometheus.NewDesc("rampart_devices",
		`Devices by tenant, product and attestation status ("" before the first verdict; unclaimed devices have tenant and product "").`,
		[]string{"tenant", "product", "attestation"}, nil)
	descDevicesRelease = prometheus.NewDesc("rampart_devices_by_release",
		`Claimed devices by the release they report running ("" when none yet).`,
		[]string{"tenant", "product", "release"}, nil)
	descDevicesOnline = prometheus.NewDesc("rampart_devices_by_online",
		"Claimed devices by online state: online (seen within 24 h), offline, never (never attested nor reported).",
		[]string{"tenant", "product", "state"}, nil)
	descDevicesWaiting = prometheus.NewDesc("rampart_devices_waiting",
		"Devices waiting on this replica's long-poll now (sum over replicas for the fleet).", nil, nil)
	descDeployments = prometheus.NewDesc("rampart_deployments",
		"Deployments by tenant, product and state (active, paused, aborted, completed).",
		[]string{"tenant", "product", "state"}, nil)
	descPhaseDevices = prometheus.NewDesc("rampart_deployment_phase_devices",
		"Devices of each open (active or paused) deployment by phase (1-based) and install state.",
		[]string{"tenant", "product", "group", "deployment", "release", "phase", "install"}, nil)
	descDeploymentPhase = prometheus.NewDesc("rampart_deployment_current_phase",
		"The phase (1-based) each open deployment has reached, by state (active or paused).",
		[]string{"tenant", "product", "group", "deployment", "release", "state"}, nil)
	descFixDevices = prometheus.NewDesc("rampart_fix_devices",
		"Devices of a report's product by coverage of its fix: covered (run no affected release), exposed (run one), unknown (reported no release).",
		[]string{"tenant", "product", "report", "fixed", "coverage"}, nil)
	descFixRatio = prometheus.NewDesc("rampart_fix_coverage_ratio",
		"Share of a report's product's claimed devices that run no release the report lists as affected (1 when the product has none).",
		[]string{"tenant", "product", "report", "fixed"}, nil)
	descReports = prometheus.NewDesc("rampart_reports",
		"Vulnerability reports by tenant, product and state.",
		[]string{"tenant", "product", "state"}, nil)
	descUntriaged = prometheus.NewDesc("rampart_report_oldest_untriaged_age_seconds",
		"Age of the tenant's oldest report still in state new (0 when none).",
		[]string{"tenant"}, nil)
	descNoReply = prometheus.NewDesc("rampart_report_oldest_unanswered_age_seconds",
		"Age of the tenant's oldest open report with no first response (0 when none).",
		[]string{"tenant"}, nil)
	descRefusals = prometheus.NewDesc("rampart_attestation_refusals_total",
		`Attestations refused (no certificate) by tenant ("" for unclaimed devices) and the verifier rule that decided them.`,
		[]string{"tenant", "reason"}, nil)
	descInstallFailures = prometheus.NewDesc("rampart_install_failures_total",
		"Failed and rolled-back installs reported by devices, by tenant and class of reason (store.InstallFailureClasses).",
		[]string{"tenant", "reason"}, nil)
	descTruncated = prometheus.NewDesc("rampart_fleet_metrics_truncated",
		"1 when a fleet metric was cut at its row limit (500 label sets; 100 fixes).",
		[]string{"metric"}, nil)
	descFleetUp = prometheus.NewDesc("rampart_fleet_metrics_up",
		"1 when the last reading of the fleet's state from the database succeeded.", nil, nil)
	descFleetAge = prometheus.NewDesc("rampart_fleet_metrics_age_seconds",
		"Age of the reading of the fleet's state this scrape exports (cached up to 15 s).", nil, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDevicesAttestation, descDevicesRelease, descDevicesOnline, descDevicesWaiting,
		descDeployments, descPhaseDevices, descDeploymentPhase, descFixDevices, descFixRatio, descReports, descUntriaged,
		descNoReply, descRefusals, descInstallFailures, descTruncated, descFleetUp, descFleetAge} {
		ch <- d
	}
}

// read returns the cached reading, or reads anew once it is older than FleetCacheTTL.
func (c *fleetCollector) read() (store.Fleet, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= FleetCacheTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		f, err := c.store.FleetState(ctx)
		cancel()
		c.at, c.err = time.Now(), err
		if err == nil {
			c.fleet = f
		} else {
			c.log.Warn("reading the fleet's state for /metrics failed", "err", err)
		}
	}
	return c.fleet, c.at, c.err
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descDevicesWaiting, prometheus.GaugeValue, float64(c.waiting()))
	f, at, err := c.read()
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(descFleetUp, prometheus.GaugeValue, up)
	if f.At.IsZero() {
		return // never read successfully: export nothing rather than zeros
	}
	ch <- prometheus.MustNewConstMetric(descFleetAge, prometheus.GaugeValue, time.Since(at).Seconds())
	gauge := func(d *prometheus.Desc, cs []store.FleetCount, withProduct bool, kind prometheus.ValueType) {
		for _, x := range cs {
			if withProduct {
				ch <- prometheus.MustNewConstMetric(d, kind, float64(x.N), x.Tenant, x.Product, x.Key)
			} else {
				ch <- prometheus.MustNewConstMetric(d, kind, float64(x.N), x.Tenant, x.Key)
			}
		}
	}
	gauge(descDevicesAttestation, f.DevicesByAttestation, true, prometheus.GaugeValue)
	gauge(descDevicesRelease, f.DevicesByRelease, true, prometheus.GaugeValue)
	gauge(descDevicesOnline, f.DevicesByOnline, true, prometheus.GaugeValue)
	gauge(descDeployments, f.Deployments, true, prometheus.GaugeValue)
	gauge(descReports, f.Reports, true, prometheus.GaugeValue)
	gauge(descRefusals, f.Refusals, false, prometheus.CounterValue)
	gauge(descInstallFailures, f.InstallFailures, false, prometheus.CounterValue)
	type open struct{ tenant, product, group, seq, release, state string }
	seen := map[open]int64{}
	for _, p := range f.Phases {
		seq := strconv.FormatInt(p.Deployment, 10)
		ch <- prometheus.MustNewConstMetric(descPhaseDevices, prometheus.GaugeValue, float64(p.N),
			p.Tenant, p.Product, p.Group, seq, p.Release, strconv.FormatInt(p.Phase+1, 10), p.Install)
		seen[open{p.Tenant, p.Product, p.Group, seq, p.Release, p.State}] = p.CurrentPhase
	}
	for o, phase := range seen {
		ch <- prometheus.MustNewConstMetric(descDeploymentPhase, prometheus.GaugeValue, float64(phase+1),
			o.tenant, o.product, o.group, o.seq, o.release, o.state)
	}
	for _, x := range f.Fixes {
		n := strconv.FormatInt(x.Report, 10)
		exposed := x.Total - x.Covered - x.Unknown
		for _, v := range []struct {
			k string
			n int64
		}{{"covered", x.Covered}, {"exposed", exposed}, {"unknown", x.Unknown}} {
			ch <- prometheus.MustNewConstMetric(descFixDevices, prometheus.GaugeValue, float64(v.n), x.Tenant, x.Product, n, x.Fixed, v.k)
		}
		ratio := 1.0
		if x.Total > 0 {
			ratio = float64(x.Covered) / float64(x.Total)
		}
		ch <- prometheus.MustNewConstMetric(descFixRatio, prometheus.GaugeValue, ratio, x.Tenant, x.Product, n, x.Fixed)
	}
	for _, cl := range f.Clocks {
		for _, v := range []struct {
			d  *prometheus.Desc
			at time.Time
		}{{descUntriaged, cl.OldestUntriaged}, {descNoReply, cl.OldestNoReply}} {
			age := 0.0
			if !v.at.IsZero() {
				age = max(f.At.Sub(v.at).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, age, cl.Tenant)
		}
	}
	for _, name := range f.Truncated {
		ch <- prometheus.MustNewConstMetric(descTruncated, prometheus.GaugeValue, 1, name)
	}
}
