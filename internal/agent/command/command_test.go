package command

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no verb", nil, "one verb expected"},
		{"two verbs", []string{"run", "status"}, "one verb expected"},
		{"unknown verb", []string{"fly"}, `unknown verb "fly"`},
		{"unknown flag after the verb", []string{"run", "--fast"}, "flag provided but not defined"},
		{"no server", []string{"run", "--once"}, "run needs --server and --ca-file"},
		{"-v is not a flag", []string{"-v", "status"}, "flag provided but not defined: -v (rampart-agent --help lists the flags)"},
		{"bad CA file", []string{"--server", "https://x", "--ca-file", "/dev/null", "status"}, "--ca-file /dev/null: no PEM certificate"},
		{"bad RAUC bus", []string{"--rauc-bus", "sytem", "status"}, `--rauc-bus "sytem" is not system or session`},
		{"no module folder", []string{"--module-dir", "/nonexistent/modules", "status"}, "--module-dir /nonexistent/modules:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(context.Background(), tc.args, "test", &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run(%q) = %v, want an error with %q", tc.args, err, tc.want)
			}
			if !errors.Is(err, ErrUsage) && strings.Contains(tc.want, "verb") {
				t.Errorf("a usage error is not ErrUsage: %v", err)
			}
			// The user sees the sentence alone, once: no "usage:" prefix, no flag-package dump.
			if msg := Message(err); strings.HasPrefix(msg, "usage") || errb.Len() != 0 {
				t.Errorf("Message = %q, stderr %q", msg, errb.String())
			}
		})
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, "1.2.3", &out, &out); err != nil || out.String() != "rampart-agent 1.2.3\n" {
		t.Fatalf("version: %q, %v", out.String(), err)
	}
}

// TestHelpAndStatus pins what a newcomer meets first: --help (before or after the verb) prints
// the usage on stdout and succeeds; --version prints the version; status reads the state folder
// alone, with no --server or --ca-file.
func TestHelpAndStatus(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"run", "--help"}} {
		var out, errb bytes.Buffer
		if err := Run(context.Background(), args, "test", &out, &errb); err != nil || !strings.HasPrefix(out.String(), "usage: rampart-agent") || errb.Len() != 0 {
			t.Errorf("Run(%q) = %v, stdout %.40q, stderr %q; want the usage on stdout and success", args, err, out.String(), errb.String())
		}
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--version"}, "1.2.3", &out, &out); err != nil || out.String() != "rampart-agent 1.2.3\n" {
		t.Fatalf("--version: %q, %v", out.String(), err)
	}
	out.Reset()
	t.Setenv("RAMPART_SERVER", "")
	t.Setenv("RAMPART_CA_FILE", "")
	dir := t.TempDir()
	id := enrolledFolder(t, dir, true)
	err := Run(context.Background(), []string{"--state", dir, "--attester", "software", "status", "--output", "json"}, "test", &out, &out)
	var st struct {
		DeviceID string `json:"device_id"`
		Attester string `json:"attester"`
	}
	if err != nil || json.Unmarshal(out.Bytes(), &st) != nil || st.DeviceID != id || st.Attester != "software" {
		t.Fatalf("status without --server: %v, %s", err, out.String())
	}
}

// listing is every file and folder under dir with its mode, size, time and content digest; ""
// when dir does not exist.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if d.Type().IsRegular() {
			content, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h := sha256.Sum256(content)
			sum = hex.EncodeToString(h[:8])
		}
		fmt.Fprintf(&b, "%s %v %d %d %s\n", path, info.Mode(), info.Size(), info.ModTime().UnixNano(), sum)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// notAfter is the expiry of the certificates enrolledFolder writes.
var notAfter = time.Date(2031, 5, 4, 3, 2, 1, 0, time.UTC)

// enrolledFolder fills dir as an enrolled, attested device's state folder on the software
// attester: its keys, a device certificate naming its ID and, when recorded, the record an
// agent writes at enrolment (an older agent's folder has none). It returns the device ID.
func enrolledFolder(t *testing.T, dir string, recorded bool) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("ab", 32)
	uri := &url.URL{Scheme: "spiffe", Host: "default", Path: "/update-only/device/" + id}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "device"},
		NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter, URIs: []*url.URL{uri}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"device-cert.pem": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"identity.key":    "a key the status verb must not read",
		"cert.key":        "a key the status verb must not read",
	}
	if recorded {
		files["device.json"] = `{"device_id":"` + id + `","attester":"software"}` + "\n"
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// TestStatusWithoutADevice pins status on a folder that holds no device: one sentence that says
// what to do, exit 1 (not a usage error), and nothing written, whatever the attester: the
// default tpm, on a machine without one, included.
func TestStatusWithoutADevice(t *testing.T) {
	t.Setenv("RAMPART_SERVER", "")
	t.Setenv("RAMPART_CA_FILE", "")
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "state")
	for _, tc := range []struct {
		name, dir string
		args      []string
	}{
		{"empty folder, software", empty, []string{"--attester", "software"}},
		{"empty folder, default attester", empty, nil},
		{"empty folder, json", empty, []string{"--attester", "software", "--output", "json"}},
		{"missing folder", missing, []string{"--attester", "software"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := listing(t, tc.dir)
			var out, errb bytes.Buffer
			err := Run(context.Background(), append(append([]string{"--state", tc.dir}, tc.args...), "status"), "test", &out, &errb)
			want := "no device in " + tc.dir + " yet; run rampart-agent enroll first"
			if err == nil || errors.Is(err, ErrUsage) || Message(err) != want {
				t.Fatalf("status = %v (usage %v), want the sentence %q and exit 1", err, errors.Is(err, ErrUsage), want)
			}
			if out.Len() != 0 || errb.Len() != 0 {
				t.Errorf("status printed %q, %q", out.String(), errb.String())
			}
			if after := listing(t, tc.dir); after != before {
				t.Errorf("status changed the state folder:\nbefore:\n%safter:\n%s", before, after)
			}
		})
	}
}

// TestStatusReadsTheFolderAlone pins status on an enrolled device's folder: it prints what the
// folder keeps (device, attester, certificate expiry, update-only) with no attester (the
// default tpm, which this machine need not have) and no server, and writes nothing; for a folder
// an older agent enrolled (no record) the device ID comes from the certificate.
func TestStatusReadsTheFolderAlone(t *testing.T) {
	t.Setenv("RAMPART_SERVER", "")
	t.Setenv("RAMPART_CA_FILE", "")
	for _, tc := range []struct {
		name         string
		recorded     bool
		args         []string
		wantAttester string
	}{
		{"recorded, default attester", true, nil, "software"},
		{"recorded, other attester flag", true, []string{"--attester", "swtpm:127.0.0.1:1"}, "software"},
		{"older agent's folder", false, []string{"--attester", "software"}, "software"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			id := enrolledFolder(t, dir, tc.recorded)
			before := listing(t, dir)
			var out, errb bytes.Buffer
			err := Run(context.Background(), append(append([]string{"--state", dir}, tc.args...), "status"), "test", &out, &errb)
			if err != nil {
				t.Fatalf("status: %v", Message(err))
			}
			rows := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				k, v, _ := strings.Cut(line, "  ")
				rows[k] = strings.TrimSpace(v)
			}
			for k, v := range map[string]string{"device": id, "attester": tc.wantAttester, "update-only certificate": "true",
				"certificate expires": notAfter.Format(time.RFC3339), "release": "-", "slot": "-", "trial boot": "false",
				"pending crash reports": "0"} {
				if rows[k] != v {
					t.Errorf("status row %q = %q, want %q:\n%s", k, rows[k], v, out.String())
				}
			}
			if after := listing(t, dir); after != before {
				t.Errorf("status changed the state folder:\nbefore:\n%safter:\n%s", before, after)
			}
		})
	}
}

// TestStatusDamagedRecord pins status on a folder whose device record is damaged: one sentence
// that names the file and what writes it again, exit 1, nothing written.
func TestStatusDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	enrolledFolder(t, dir, true)
	if err := os.WriteFile(filepath.Join(dir, "device.json"), []byte("{\"device_"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)
	var out bytes.Buffer
	err := Run(context.Background(), []string{"--state", dir, "--attester", "software", "status"}, "test", &out, &out)
	want := "the device record " + filepath.Join(dir, "device.json") + " is damaged; rampart-agent enroll writes it again"
	if err == nil || errors.Is(err, ErrUsage) || Message(err) != want || out.Len() != 0 {
		t.Fatalf("status = %v, printed %q; want the sentence %q and exit 1", err, out.String(), want)
	}
	if after := listing(t, dir); after != before {
		t.Errorf("status changed the state folder:\nbefore:\n%safter:\n%s", before, after)
	}
}

// TestStatusShowsInstallers pins status on a device whose release came through RAUC and whose
// next install waits for its reboot: the installer, the installers, the step under way and, RAUC
// being unreachable, why its slots are not shown.
func TestStatusShowsInstallers(t *testing.T) {
	t.Setenv("RAMPART_SERVER", "")
	t.Setenv("RAMPART_CA_FILE", "")
	dir := t.TempDir()
	enrolledFolder(t, dir, true)
	if err := os.MkdirAll(filepath.Join(dir, "update"), 0o700); err != nil {
		t.Fatal(err)
	}
	journal := `{"format":1,"phase":"rebooting","artifact":{"type":"rauc-bundle","component":"rootfs","release":"1.0.2",
		"version":"1.0.2","security_version":1,"sha256":"` + strings.Repeat("a", 64) + `","length":1,"path":"/x","work_dir":"/y"},
		"release":"1.0.1","installer":"rauc-bundle","components":{},"last_failure":"health check failed: no heartbeat"}`
	if err := os.WriteFile(filepath.Join(dir, "update", "install.json"), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(dir, "no-bus"))
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"--state", dir, "--rauc-bus", "session", "status"}, "test", &out, &errb); err != nil {
		t.Fatalf("status: %v", Message(err))
	}
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "  ")
		rows[k] = strings.TrimSpace(v)
	}
	for k, v := range map[string]string{"release": "1.0.1", "installer": "rauc-bundle", "installers": "directory, rauc-bundle",
		"install under way": "rebooting", "last failure": "health check failed: no heartbeat", "booted slot (RAUC)": "-"} {
		if rows[k] != v {
			t.Errorf("status row %q = %q, want %q:\n%s", k, rows[k], v, out.String())
		}
	}
	if !strings.Contains(rows["RAUC"], "the session D-Bus is not reachable") {
		t.Errorf("RAUC row %q:\n%s", rows["RAUC"], out.String())
	}
}
