package update

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/agent/devclient"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

func TestHTTPReporter(t *testing.T) {
	var got []deviceapi.InstallStatus
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/device/v1/install-status" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var s deviceapi.InstallStatus
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		if s.State == "boom" {
			http.Error(w, "refused", http.StatusBadRequest)
			return
		}
		got = append(got, s)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	rep := &HTTPReporter{Client: devclient.New(srv.URL, srv.Client(), devclient.Limits{})}
	ctx := context.Background()
	if err := rep.Report(ctx, Status{State: StateFailed, Release: "1.1.0", Slot: "b", Reason: "bad\x00 \x1bthing" + strings.Repeat("x", 2000)}); err != nil {
		t.Fatal(err)
	}
	if err := rep.Report(ctx, Status{State: StateCommitted, Release: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := rep.Report(ctx, Status{State: "boom"}); err == nil {
		t.Error("a refused report returned no error")
	}
	want := []deviceapi.InstallStatus{
		{State: StateFailed, Release: "1.1.0", Reason: "bad thing" + strings.Repeat("x", deviceapi.MaxInstallReason-len("bad\x00 \x1bthing"))},
		{State: StateCommitted, Release: "1.1.0"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("reports (-got +want):\n%s", diff)
	}
}
