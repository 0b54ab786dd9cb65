package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/testenv"
)

func openSoftware(t *testing.T, dir, boot string) *Software {
	t.Helper()
	s, err := OpenSoftware(dir, boot)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pcrValues(t *testing.T, a Attester) map[int]string {
	t.Helper()
	q, err := a.Quote(context.Background(), deviceapi.QuotedPCRs, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]string)
	for _, p := range q.PCRs {
		out[p.Index] = p.Digest
	}
	return out
}

func extendOf(prev, digest []byte) string {
	sum := sha256.Sum256(append(bytes.Clone(prev), digest...))
	return hex.EncodeToString(sum[:])
}

func TestSoftwarePCRBankPersistsWithinABoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	zero := hex.EncodeToString(make([]byte, 32))
	digest := sha256.Sum256([]byte("kernel"))

	a := openSoftware(t, dir, "boot-1")
	id1, err := DeviceID(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Extend(ctx, deviceapi.AgentPCR, digest[:]); err != nil {
		t.Fatal(err)
	}
	zeros := make(map[int]string)
	for _, p := range deviceapi.QuotedPCRs {
		zeros[p] = zero
	}
	want := maps.Clone(zeros)
	want[deviceapi.AgentPCR] = extendOf(make([]byte, 32), digest[:])
	if diff := cmp.Diff(pcrValues(t, a), want); diff != "" {
		t.Errorf("after extend (-got +want):\n%s", diff)
	}

	same := openSoftware(t, dir, "boot-1")
	if diff := cmp.Diff(pcrValues(t, same), want); diff != "" {
		t.Errorf("reopened in the same boot (-got +want):\n%s", diff)
	}
	rebooted := openSoftware(t, dir, "boot-2")
	if diff := cmp.Diff(pcrValues(t, rebooted), zeros); diff != "" {
		t.Errorf("after reboot (-got +want):\n%s", diff)
	}
	id2, err := DeviceID(ctx, rebooted)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 {
		t.Errorf("device id changed across reboot: %s then %s", id1, id2)
	}
	for _, f := range []string{identityKeyFile, certKeyFile, pcrBankFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
}

func TestSoftwareRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	a := openSoftware(t, t.TempDir(), "boot-1")
	if err := a.Extend(ctx, 24, make([]byte, 32)); err == nil {
		t.Error("Extend accepted pcr 24")
	}
	if err := a.Extend(ctx, 12, make([]byte, 20)); err == nil {
		t.Error("Extend accepted a 20-byte digest")
	}
	if _, err := a.Quote(ctx, []int{13, 12}, nil); err == nil {
		t.Error("Quote accepted a descending selection")
	}
	if _, err := a.Activate(ctx, []byte{1}, []byte{2}); !errors.Is(err, ErrNoEK) {
		t.Errorf("Activate: %v, want ErrNoEK", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, identityKeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSoftware(dir, "boot-1"); err == nil {
		t.Error("OpenSoftware accepted a corrupt identity key")
	}
}

func TestSoftwareCertificateKeyIsNotIdentity(t *testing.T) {
	ctx := context.Background()
	a := openSoftware(t, t.TempDir(), "boot-1")
	signer, cert, err := a.CertificateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		t.Error("software attester returned a TPM certification")
	}
	if signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(a.identity.Public()) {
		t.Error("certificate key is the identity key")
	}
}

func TestMeasurementLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := openSoftware(t, dir, "boot-1")
	path := filepath.Join(dir, "log.json")
	log, err := OpenLog(path, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "agent.bin")
	if err := os.WriteFile(img, []byte("agent binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := log.MeasureFile(ctx, a, deviceapi.EventAgent, "rampart-agent", "1.2.0", img); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("agent binary"))
	want := []deviceapi.Event{{PCR: deviceapi.AgentPCR, Digest: hex.EncodeToString(sum[:]), Type: deviceapi.EventAgent, Name: "rampart-agent", Version: "1.2.0"}}
	if diff := cmp.Diff(log.Events, want); diff != "" {
		t.Errorf("events (-got +want):\n%s", diff)
	}
	if !log.Measured(deviceapi.EventAgent, "rampart-agent", sum[:]) {
		t.Error("Measured does not find the recorded event")
	}
	if got := pcrValues(t, a)[deviceapi.AgentPCR]; got != extendOf(make([]byte, 32), sum[:]) {
		t.Errorf("pcr 23 = %s, not the extension of the measured digest", got)
	}

	reopened, err := OpenLog(path, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reopened.Events, want); diff != "" {
		t.Errorf("reopened in the same boot (-got +want):\n%s", diff)
	}
	rebooted, err := OpenLog(path, "boot-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(rebooted.Events) != 0 {
		t.Errorf("log of a previous boot kept %d events", len(rebooted.Events))
	}

	for _, tc := range []struct {
		name   string
		typ    deviceapi.EventType
		digest []byte
	}{
		{"unknown type", "firmware", sum[:]},
		{"short digest", deviceapi.EventOS, sum[:20]},
	} {
		if err := log.Measure(ctx, a, tc.typ, "x", "1", tc.digest); err == nil {
			t.Errorf("%s: Measure accepted it", tc.name)
		}
	}
	if len(log.Events) != 1 {
		t.Errorf("refused measurements changed the log: %d events", len(log.Events))
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		spec string
		want error
	}{
		{"fpga", ErrUnknownBackend},
		{"", ErrUnknownBackend},
	} {
		if _, err := Open(ctx, Config{Spec: tc.spec, StateDir: t.TempDir(), BootID: "b"}); !errors.Is(err, tc.want) {
			t.Errorf("Open(%q): %v, want %v", tc.spec, err, tc.want)
		}
	}
	if _, err := Open(ctx, Config{Spec: "swtpm:nohost", StateDir: t.TempDir(), BootID: "b"}); err == nil {
		t.Error("Open accepted swtpm without a port")
	}
	if _, err := Open(ctx, Config{Spec: "tpm", TPMPath: filepath.Join(t.TempDir(), "tpmrm0"), StateDir: t.TempDir(), BootID: "b"}); err == nil {
		t.Error("Open accepted a missing TPM device")
	}
	if _, err := Open(ctx, Config{Spec: "simulator", StateDir: t.TempDir(), BootID: "b"}); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Open(simulator) without a simulator backend: %v, want ErrNotBuilt", err)
	}
}

// TestSWTPMTransportRejectsBadResponses runs the transport against a fake
// swtpm on loopback that answers each command with a canned response.
func TestSWTPMTransportRejectsBadResponses(t *testing.T) {
	header := func(size uint32) []byte {
		h := make([]byte, 10)
		binary.BigEndian.PutUint16(h, 0x8001)
		binary.BigEndian.PutUint32(h[2:], size)
		return h
	}
	for _, tc := range []struct {
		name string
		resp []byte
		ok   bool
	}{
		{"complete response", append(header(14), 1, 2, 3, 4), true},
		{"oversized", header(maxTPMResponse + 1), false},
		{"smaller than its header", header(4), false},
		{"truncated body", append(header(100), 1, 2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 64)
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write(tc.resp)
			}()
			s, err := DialSWTPM(context.Background(), l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			resp, err := s.Send([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 0x44})
			if tc.ok {
				if err != nil || !bytes.Equal(resp, tc.resp) {
					t.Fatalf("Send = %x, %v; want %x", resp, err, tc.resp)
				}
				return
			}
			if !errors.Is(err, ErrTransport) {
				t.Fatalf("Send error %v, want ErrTransport", err)
			}
		})
	}
}

// TestAgentDependencies guards the agent's dependency list: no database,
// web or server code may reach it.
func TestAgentDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command", "put the Go toolchain in PATH")
	}
	cmd := exec.Command(gobin, "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"database/sql", "net/http", "html/template",
		"modernc.org/", "github.com/jackc/",
		"github.com/rampartsec/rampart/internal/attest\n", "github.com/rampartsec/rampart/internal/ca\n",
		"github.com/rampartsec/rampart/internal/store", "github.com/rampartsec/rampart/internal/api",
		"github.com/rampartsec/rampart/internal/server",
		"github.com/google/go-tpm-tools/simulator",
	}
	deps := string(out)
	for _, f := range forbidden {
		if strings.Contains(deps, f) {
			t.Errorf("agent attestation package depends on %q", strings.TrimSpace(f))
		}
	}
}

// An IMA log grows for as long as the device runs; past its limit the evidence
// goes without it rather than the device never attesting again until a reboot.
// A firmware log over its limit is still an error: it does not grow.
func TestPlatformLogsOverLimit(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "ima")
	if err := os.WriteFile(big, make([]byte, deviceapi.MaxIMALog+1), 0o600); err != nil {
		t.Fatal(err)
	}
	fw := filepath.Join(dir, "fw")
	if err := os.WriteFile(fw, []byte("firmware log"), 0o600); err != nil {
		t.Fatal(err)
	}
	ev, ima, err := PlatformLogs{EventLog: fw, IMALog: big}.Read(deviceapi.KindTPM)
	if err != nil || string(ev) != "firmware log" || ima != nil {
		t.Fatalf("Read = %q, %d bytes of IMA log, %v; want the firmware log and no IMA log", ev, len(ima), err)
	}
	bigFW := filepath.Join(dir, "bigfw")
	if err := os.WriteFile(bigFW, make([]byte, deviceapi.MaxEventLog+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (PlatformLogs{EventLog: bigFW, IMALog: "-"}).Read(deviceapi.KindTPM); err == nil {
		t.Fatal("a firmware log over its limit was read")
	}
}

// TestSoftwareRebooted: the attester of the next boot keeps the device's keys and starts its PCR
// bank over from zero, as OpenSoftware does after a reboot, and persists it the same way.
func TestSoftwareRebooted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	zero := hex.EncodeToString(make([]byte, 32))
	digest := sha256.Sum256([]byte("rootfs 1.0.1"))
	a := openSoftware(t, dir, "boot-1")
	if err := a.Extend(ctx, deviceapi.AgentPCR, digest[:]); err != nil {
		t.Fatal(err)
	}
	b, err := a.Rebooted("boot-2")
	if err != nil {
		t.Fatal(err)
	}
	idA, _ := DeviceID(ctx, a)
	idB, _ := DeviceID(ctx, b)
	if idA == "" || idA != idB {
		t.Fatalf("device IDs %q and %q", idA, idB)
	}
	for pcr, v := range pcrValues(t, b) {
		if v != zero {
			t.Fatalf("PCR %d after the reboot = %s, want zero", pcr, v)
		}
	}
	if err := b.Extend(ctx, deviceapi.AgentPCR, digest[:]); err != nil {
		t.Fatal(err)
	}
	reopened := openSoftware(t, dir, "boot-2")
	if diff := cmp.Diff(pcrValues(t, reopened), pcrValues(t, b)); diff != "" {
		t.Errorf("the bank OpenSoftware reads for boot-2 (-got +want):\n%s", diff)
	}
	if got := pcrValues(t, b)[deviceapi.AgentPCR]; got != extendOf(make([]byte, 32), digest[:]) {
		t.Errorf("PCR %d = %s", deviceapi.AgentPCR, got)
	}
}
