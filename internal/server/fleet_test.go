package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// scrape reads /metrics through the server's handler and returns each sample of the named
// families by its labels, written name{k="v",...} in label-name order.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, fam := range families {
		if !strings.HasPrefix(name, "rampart_") || strings.HasPrefix(name, "rampart_http_") {
			continue
		}
		for _, m := range fam.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

// TestFleetMetrics checks that /metrics exports the fleet's state as the store reads it, with
// the labels the alerting rules and the dashboard in deploy/ use.
func TestFleetMetrics(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			f := newStepFleet(t, kind, 4)
			if _, err := f.s.store.RecordAttestation(ctx, store.AttestationRecord{TenantID: f.tenant, DeviceID: f.devices[0],
				Status: "contraindicated", Granted: "none", Rule: "boot_log_replay_mismatch"}); err != nil {
				t.Fatal(err)
			}
			d := f.deploy(t, []float64{100}, 0)
			if err := f.s.store.RecordInstallFailure(ctx, f.tenant, f.devices[1], "1.1.0", "health check failed: x"); err != nil {
				t.Fatal(err)
			}
			if err := f.s.store.AddInstallReport(ctx, f.tenant, f.devices[1], store.InstallReport{State: "failed", Release: "1.1.0",
				Reason: "health check failed: x", At: f.clk.now()}, false, true); err != nil {
				t.Fatal(err)
			}
			got := scrape(t, f.s)
			want := map[string]float64{
				`rampart_devices{attestation="",product="lamp",tenant="default"}`:                                                                                 3,
				`rampart_devices{attestation="contraindicated",product="lamp",tenant="default"}`:                                                                  1,
				`rampart_devices_by_release{product="lamp",release="1.0.0",tenant="default"}`:                                                                     4,
				`rampart_devices_by_online{product="lamp",state="online",tenant="default"}`:                                                                       2,
				`rampart_devices_by_online{product="lamp",state="never",tenant="default"}`:                                                                        2,
				`rampart_deployments{product="lamp",state="active",tenant="default"}`:                                                                             1,
				`rampart_deployment_current_phase{deployment="1",group="Production",product="lamp",release="1.1.0",state="active",tenant="default"}`:              1,
				`rampart_deployment_phase_devices{deployment="1",group="Production",install="failed",phase="1",product="lamp",release="1.1.0",tenant="default"}`:  1,
				`rampart_deployment_phase_devices{deployment="1",group="Production",install="pending",phase="1",product="lamp",release="1.1.0",tenant="default"}`: 3,
				`rampart_attestation_refusals_total{reason="boot_log_replay_mismatch",tenant="default"}`:                                                          1,
				`rampart_install_failures_total{reason="health_check",tenant="default"}`:                                                                          1,
				`rampart_devices_waiting{}`:  0,
				`rampart_fleet_metrics_up{}`: 1,
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
			if d.Seq != 1 {
				t.Errorf("deployment seq %d, want 1", d.Seq)
			}
			for k := range got {
				if strings.Contains(k, f.devices[0]) {
					t.Errorf("a series names a device: %s", k)
				}
			}
		})
	}
}

// exportedMetrics names every metric family the server's registry describes, histograms'
// series included.
func exportedMetrics(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { s.registry.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([a-z_:0-9]+)"`)
	out := map[string]bool{}
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		out[m[1]] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			out[m[1]+suffix] = true
		}
	}
	return out
}

// TestDeployUsesExportedMetrics checks that the Grafana dashboard parses and that it and the
// Prometheus rules in deploy/ name only metrics the server exports.
func TestDeployUsesExportedMetrics(t *testing.T) {
	f := newStepFleet(t, "sqlite", 0)
	exported := exportedMetrics(t, f.s)
	rampartName := regexp.MustCompile(`\brampart_[a-z_]+`)

	data, err := os.ReadFile("../../deploy/grafana/rampart-fleet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		exprs = append(exprs, v.Definition)
	}
	rules, err := os.ReadFile("../../deploy/prometheus/rampart-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, string(rules))
	used := 0
	for _, e := range exprs {
		for _, name := range rampartName.FindAllString(e, -1) {
			used++
			if !exported[name] {
				t.Errorf("deploy/ uses %s, which the server does not export", name)
			}
		}
	}
	if used < 20 {
		t.Errorf("deploy/ names %d metrics, want the fleet's (at least 20 uses)", used)
	}
}
