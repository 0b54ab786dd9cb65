package attest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	gattest "github.com/google/go-attestation/attest"

	agent "github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// realLogs are firmware event logs captured on real machines, from go-attestation's test
// data (testdata/eventlogs/README.md).
var realLogs = []struct {
	file       string
	secureBoot bool
	apps       int
}{
	{"ubuntu_2104_shielded_vm_no_secure_boot_eventlog", false, 2},
	{"coreos_36_shielded_vm_no_secure_boot_eventlog", false, 2},
	{"sb_cert_eventlog", true, 3},
	{"crypto_agile_eventlog", false, 2}, // its SecureBoot variable is empty
}

func readLog(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "eventlogs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logDigests returns, per boot PCR, the SHA-256 digests the log extends into it, in order,
// read without verification: what the firmware would have extended into the TPM.
func logDigests(t testing.TB, raw []byte) map[int][][]byte {
	t.Helper()
	el, err := gattest.ParseEventLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int][][]byte)
	for _, e := range el.Events(gattest.HashSHA256) {
		if !slices.Contains(deviceapi.BootPCRs, e.Index) || e.Type == 3 /* EV_NO_ACTION */ {
			continue
		}
		out[e.Index] = append(out[e.Index], e.Digest)
	}
	return out
}

// extendLog extends a real log's digests into the attester's PCRs, as the firmware did.
func extendLog(t testing.TB, a agent.Attester, raw []byte) {
	t.Helper()
	for pcr, ds := range logDigests(t, raw) {
		for _, d := range ds {
			if err := a.Extend(context.Background(), pcr, d); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// replayedPCRs computes the boot PCRs from a log's digests.
func replayedPCRs(t testing.TB, raw []byte) map[int][]byte {
	t.Helper()
	out := make(map[int][]byte)
	for _, i := range deviceapi.BootPCRs {
		out[i] = make([]byte, sha256.Size)
	}
	for pcr, ds := range logDigests(t, raw) {
		for _, d := range ds {
			s := sha256.Sum256(append(bytes.Clone(out[pcr]), d...))
			out[pcr] = s[:]
		}
	}
	return out
}

func TestCheckBootLogRealLogs(t *testing.T) {
	for _, l := range realLogs {
		t.Run(l.file, func(t *testing.T) {
			raw := readLog(t, l.file)
			st, err := checkBootLog(raw, replayedPCRs(t, raw))
			if err != nil {
				t.Fatalf("checkBootLog: %v", err)
			}
			if st.Evidence != EvidenceMeasuredBoot || st.SecureBoot != l.secureBoot {
				t.Errorf("state %+v, want measured boot with secure boot %v", st, l.secureBoot)
			}
			if l.file == "crypto_agile_eventlog" && st.SecureBootUnreadable == "" {
				t.Error("an empty SecureBoot variable is not reported")
			}
			if len(st.Applications) != l.apps {
				t.Errorf("%d EFI applications, want %d: %+v", len(st.Applications), l.apps, st.Applications)
			}
			t.Logf("secure boot %v, db %+v, dbx hashes %v, apps %v, cmdline %q", st.SecureBoot, st.DB, st.DBX, st.Applications, st.KernelCommandLine)

			// Another boot: one PCR differs from what the log replays to.
			other := replayedPCRs(t, raw)
			other[4] = bytes.Repeat([]byte{1}, sha256.Size)
			if _, err := checkBootLog(raw, other); err == nil {
				t.Error("a log replayed against another boot's PCRs was accepted")
			}
		})
	}
}

// TestSecureBootCache: the Secure Boot state read through the verifier's cache is the state
// read without it, for every real log, whichever log came before; each configuration has its
// own entry; results share no slice; and a warm cache still refuses a log that does not replay.
func TestSecureBootCache(t *testing.T) {
	c := &secureBootCache{}
	for round := range 2 {
		for _, l := range realLogs {
			raw := readLog(t, l.file)
			want, err := checkBootLog(raw, replayedPCRs(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err := checkBootLogWith(raw, replayedPCRs(t, raw), c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round %d, %s: cached state %+v, read %+v", round, l.file, got, want)
			}
		}
	}
	// crypto_agile_eventlog's Secure Boot state does not read: it is not kept.
	if len(c.m) != len(realLogs)-1 {
		t.Errorf("%d cached states, want %d", len(c.m), len(realLogs)-1)
	}
	raw := readLog(t, "sb_cert_eventlog")
	a, errA := checkBootLogWith(raw, replayedPCRs(t, raw), c)
	b, errB := checkBootLogWith(raw, replayedPCRs(t, raw), c)
	if errA != nil || errB != nil || a.DB == nil || len(a.DB.Certificates) == 0 {
		t.Fatalf("%v %v %+v", errA, errB, a)
	}
	a.DB.Certificates[0] = "changed"
	if b.DB.Certificates[0] == "changed" || a.DB == b.DB {
		t.Error("two results share their db")
	}
	other := replayedPCRs(t, raw)
	other[7] = bytes.Repeat([]byte{7}, sha256.Size)
	if _, err := checkBootLogWith(raw, other, c); !errors.Is(err, errBootLogReplay) {
		t.Errorf("pcr 7 of another boot with a warm cache: %v", err)
	}
}

// imaLog builds an ima-ng log of n entries and returns it with the SHA-256 digests the kernel
// extends into PCR 10 for it, and the file digests it names. Its first entry is boot_aggregate,
// computed as a kernel since 5.8 computes it from boot's PCRs 0-9 (all zero when boot is nil;
// the PCRs boot holds, when it leaves some out).
func imaLog(n int, boot map[int][]byte) (log []byte, extends [][]byte, files []string) {
	le := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	for i := range n {
		path := "boot_aggregate"
		var fd [sha256.Size]byte
		if i == 0 {
			h := sha256.New()
			for p := 0; p <= 9; p++ {
				if v, ok := boot[p]; ok {
					h.Write(v)
				} else if boot == nil {
					h.Write(make([]byte, sha256.Size))
				}
			}
			h.Sum(fd[:0])
		} else {
			path = fmt.Sprintf("/usr/lib/app/file-%05d.so", i)
			fd = sha256.Sum256([]byte(path))
		}
		dng := append([]byte("sha256:\x00"), fd[:]...)
		nng := append([]byte(path), 0)
		data := le(nil, uint32(len(dng)))
		data = append(data, dng...)
		data = le(data, uint32(len(nng)))
		data = append(data, nng...)
		td := sha1.Sum(data)
		log = le(log, 10)
		log = append(log, td[:]...)
		log = le(log, 6)
		log = append(log, "ima-ng"...)
		log = le(log, uint32(len(data)))
		log = append(log, data...)
		ext := sha256.Sum256(data)
		extends = append(extends, ext[:])
		files = append(files, hex.EncodeToString(fd[:]))
	}
	return log, extends, files
}

func TestParseIMALog(t *testing.T) {
	log, extends, files := imaLog(50, nil)
	entries, err := ParseIMALog(log)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 50 || entries[3].FileDigestHex() != files[3] || entries[3].Path != "/usr/lib/app/file-00003.so" {
		t.Fatalf("entries decoded wrongly: %d, %+v", len(entries), entries[3])
	}
	pcr := make([]byte, sha256.Size)
	for _, e := range extends {
		s := sha256.Sum256(append(bytes.Clone(pcr), e...))
		pcr = s[:]
	}
	if !replayIMA(entries, pcr) {
		t.Error("the log does not replay to the PCR it was extended into")
	}
	if replayIMA(entries[:49], pcr) {
		t.Error("a log missing its last entry replays")
	}
	// Kernels before 5.11 extend the SHA-1 template digest, zero-padded.
	old := make([]byte, sha256.Size)
	for i := range entries {
		td := sha1.Sum(entries[i].templateData)
		s := sha256.Sum256(append(bytes.Clone(old), append(td[:], make([]byte, sha256.Size-sha1.Size)...)...))
		old = s[:]
	}
	if !replayIMA(entries, old) {
		t.Error("the log does not replay to the PCR an older kernel extended")
	}
	// The entries ParseIMALog returns are each their own: walkIMALog reuses one.
	if entries[0].Path != "boot_aggregate" || entries[1].Path != "/usr/lib/app/file-00001.so" || entries[49].FileDigestHex() != files[49] {
		t.Errorf("entries share their fields: %q %q", entries[0].Path, entries[1].Path)
	}
	// A path changed in one entry: still well formed, but it no longer replays.
	tampered := bytes.Clone(log)
	i := bytes.Index(tampered, []byte("file-00007"))
	tampered[i] = 'F'
	if e, err := ParseIMALog(tampered); err != nil || replayIMA(e, pcr) {
		t.Errorf("an entry with a changed path: %v, or it replays", err)
	}
	for name, bad := range map[string][]byte{
		"truncated": log[:len(log)-3],
		"empty":     nil,
		"other pcr": append([]byte{11}, log[1:]...),
		"huge name": append(le32(10), append(make([]byte, 20), 0xff, 0xff, 0xff, 0x7f)...),
	} {
		if _, err := ParseIMALog(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestIMAAppraisal: the entries whose file digest a release lists are known, one of a revoked
// release contraindicates, the others are unknown; a reference key that is not lowercase hex
// names no entry; and only the entries that replay to the quoted pcr 10 are appraised.
func TestIMAAppraisal(t *testing.T) {
	log, extends, files := imaLog(10, nil)
	pcrAfter := func(n int) [sha256.Size]byte {
		var pcr [sha256.Size]byte
		for _, e := range extends[:n] {
			pcr = sha256.Sum256(append(bytes.Clone(pcr[:]), e...))
		}
		return pcr
	}
	refs := newFileReferences(map[string]Reference{
		files[1]:                  {Name: "app", Version: "1.0.0"},
		files[2]:                  {Name: "old", Version: "0.9.0", Revoked: true},
		strings.ToUpper(files[3]): {Name: "upper"},
		files[8]:                  {Name: "late", Version: "1.0.0"},
		"not a digest":            {Name: "other"},
	})
	if len(refs) != 3 {
		t.Errorf("%d file references indexed, want 3", len(refs))
	}
	for _, tc := range []struct {
		replayed, known, unknown int
	}{{10, 3, 6}, {5, 2, 2}} {
		quoted := pcrAfter(tc.replayed)
		var agg bootAggregate
		var ap imaAppraisal
		n, total, err := replayIMALog(log, &quoted, false, &agg, refs, &ap)
		if err != nil || n != tc.replayed || total != 10 {
			t.Fatalf("replayed %d of %d: %v, want %d of 10", n, total, err, tc.replayed)
		}
		r := &Result{}
		st := ap.finish(r, n)
		if st.Entries != tc.replayed || st.Known != tc.known || st.Unknown != tc.unknown {
			t.Errorf("%d replayed: state %+v, want %d known, %d unknown", tc.replayed, st, tc.known, tc.unknown)
		}
		if len(r.Reasons) != 2 || r.Reasons[0].Code != ReasonRevokedComponent || !strings.Contains(r.Reasons[0].Detail, "file-00002.so") ||
			r.Reasons[1].Code != ReasonIMAUnknownFile || !strings.Contains(r.Reasons[1].Detail, "file-00003.so") {
			t.Errorf("%d replayed: reasons %v", tc.replayed, r.Reasons)
		}
	}
}

// TestBootAggregate: the IMA log's first entry must be a SHA-256 boot_aggregate of the quoted
// PCRs 0-9.
func TestBootAggregate(t *testing.T) {
	pcrs := replayedPCRs(t, readLog(t, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog"))
	first := func(log []byte) *bootAggregate {
		var b bootAggregate
		if _, err := walkIMALog(log, func(e *IMAEntry) {
			if !b.seen {
				b.keep(e)
			}
		}); err != nil {
			t.Fatal(err)
		}
		return &b
	}
	good, _, _ := imaLog(3, pcrs)
	if err := first(good).check(pcrs); err != nil {
		t.Fatalf("the boot_aggregate of the quoted pcrs: %v", err)
	}
	other := maps.Clone(pcrs)
	other[9] = bytes.Repeat([]byte{9}, sha256.Size)
	if err := first(good).check(other); err == nil {
		t.Error("a boot_aggregate checked against other pcrs 0-9")
	}
	sha1Agg := first(good)
	sha1Agg.alg, sha1Agg.n = "sha1", sha1.Size
	if err := sha1Agg.check(pcrs); err == nil || !strings.Contains(err.Error(), "sha1") {
		t.Errorf("a SHA-1 boot_aggregate: %v", err)
	}
	noAgg := bytes.Replace(good, []byte("boot_aggregate\x00"), []byte("boot_aggregatX\x00"), 1)
	if err := first(noAgg).check(pcrs); err == nil {
		t.Error("a log whose first entry is not boot_aggregate passed")
	}
	if err := (&bootAggregate{}).check(pcrs); err == nil {
		t.Error("no entry passed")
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// measuredDevice is a device whose attester holds a real firmware log's digests in PCRs
// 0-9 (and an IMA log's in PCR 10), and which sends both logs with its evidence.
type measuredDevice struct {
	s   *server
	d   *device
	dev Device
	rel []component
	raw []byte // the firmware log
	ima []byte
}

func newMeasuredDevice(t testing.TB, a agent.Attester, dir string, cas *ManufacturerCAs, logName string, imaEntries int) *measuredDevice {
	t.Helper()
	ctx := context.Background()
	m := &measuredDevice{s: newServer(t), raw: readLog(t, logName), rel: release(t, "1.0.0")}
	extendLog(t, a, m.raw)
	evPath := filepath.Join(dir, "binary_bios_measurements")
	if err := os.WriteFile(evPath, m.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	imaPath := "-"
	if imaEntries > 0 {
		var extends [][]byte
		m.ima, extends, _ = imaLog(imaEntries, replayedPCRs(t, m.raw))
		for _, e := range extends {
			if err := a.Extend(ctx, deviceapi.IMAPCR, e); err != nil {
				t.Fatal(err)
			}
		}
		imaPath = filepath.Join(dir, "binary_runtime_measurements")
		if err := os.WriteFile(imaPath, m.ima, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.d = newDevice(t, a, dir, m.rel)
	m.d.platform = agent.PlatformLogs{EventLog: evPath, IMALog: imaPath}
	en := m.s.enroll(t, m.d, cas, nil)
	m.dev = en.dev
	if en.activation != nil {
		ev := m.d.collect(t, m.dev.ID, en.resp.Nonce, en.activation)
		if r := m.verify(ev, m.policy()); r.Refused() {
			t.Fatalf("first attestation refused: %v", r.Reasons)
		}
		m.dev.Activated = true
	}
	return m
}

func (m *measuredDevice) policy() Policy {
	return Policy{AcceptSoftware: true, References: referencesFor(m.rel)}
}

func (m *measuredDevice) evidence(t testing.TB) *deviceapi.Evidence {
	t.Helper()
	ch, err := m.s.v.Challenge(context.Background(), m.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m.d.collect(t, m.dev.ID, ch.Nonce, nil)
}

func (m *measuredDevice) verify(ev *deviceapi.Evidence, pol Policy) *Result {
	return m.s.v.Verify(context.Background(), Input{Evidence: ev, Device: m.dev, Tenant: testTenant, Policy: pol})
}

// bootRefs names the log's EFI applications as boot components of a release.
func bootRefs(t testing.TB, raw []byte, revoked bool) map[string]Reference {
	t.Helper()
	st, err := checkBootLog(raw, replayedPCRs(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	refs := make(map[string]Reference)
	for i, app := range st.Applications {
		refs[app.Digest] = Reference{Type: deviceapi.EventBoot, Name: fmt.Sprintf("efi-%d", i), Version: "1.0.0", Revoked: revoked}
	}
	return refs
}

// runMeasuredBoot attests a device holding a real firmware log as it is and tampered.
func runMeasuredBoot(t *testing.T, open func(t *testing.T) (agent.Attester, string, *ManufacturerCAs)) {
	const logName = "ubuntu_2104_shielded_vm_no_secure_boot_eventlog"
	wantStatus := func(t *testing.T, r *Result, status deviceapi.Status, grant Grant, rule string) {
		t.Helper()
		if r.Status != status || r.Grant != grant || r.Rule != rule {
			t.Fatalf("result %s/%s decided by %q, want %s/%s by %q: %v", r.Status, r.Grant, r.Rule, status, grant, rule, r.Reasons)
		}
	}
	warnOrAffirm := func(kind deviceapi.AttesterKind) (deviceapi.Status, string) {
		if kind == deviceapi.KindSoftware {
			return deviceapi.StatusWarning, ReasonSoftwareAttester
		}
		return deviceapi.StatusAffirming, RuleAllKnown
	}
	t.Run("as it is", func(t *testing.T) {
		a, dir, cas := open(t)
		m := newMeasuredDevice(t, a, dir, cas, logName, 20)
		pol := m.policy()
		pol.RequireBootLog, pol.BootReferences = true, bootRefs(t, m.raw, false)
		r := m.verify(m.evidence(t), pol)
		// The IMA log names files no release holds: a warning.
		if !slices.ContainsFunc(r.Reasons, func(re deviceapi.Reason) bool { return re.Code == ReasonIMAUnknownFile }) {
			t.Errorf("reasons %v lack %s", r.Reasons, ReasonIMAUnknownFile)
		}
		if r.Grant != GrantNormal || r.Boot == nil || r.Boot.Evidence != EvidenceMeasuredBoot {
			t.Fatalf("result %s/%s %v, boot %+v", r.Status, r.Grant, r.Reasons, r.Boot)
		}
		if r.Boot.KernelCommandLine == "" || len(r.Boot.Applications) != 2 || r.Boot.Applications[0].Known == "" {
			t.Errorf("boot state %+v", r.Boot)
		}
		if r.Boot.IMA == nil || r.Boot.IMA.Entries != 20 || r.Boot.IMA.Unknown != 19 {
			t.Errorf("ima state %+v", r.Boot.IMA)
		}
		// The agent reads the IMA log after the quote, and the kernel may have measured
		// more files in between: the entries that replay to the quoted pcr 10 are
		// attested, those after them left aside.
		past := m.evidence(t)
		past.IMALog, _, _ = imaLog(21, replayedPCRs(t, m.raw))
		r = m.verify(roundTrip(t, past, decodeEvidence), pol)
		if r.Grant != GrantNormal || r.Boot == nil || r.Boot.IMA == nil || r.Boot.IMA.Entries != 20 {
			t.Errorf("an ima log that runs past the quote: %s/%s %v, ima %+v", r.Status, r.Grant, r.Reasons, r.Boot)
		}
		// Without the IMA log (PCR 10 still quoted) the verdict is the attester's own.
		m.d.platform.IMALog = "-"
		r = m.verify(m.evidence(t), pol)
		status, rule := warnOrAffirm(m.dev.Attester)
		wantStatus(t, r, status, GrantNormal, rule)
	})
	// An IMA log whose entries were extended into PCR 10, so that they replay, but whose
	// boot_aggregate is not of this boot's PCRs 0-9: a log made on another machine or boot
	// and its entries extended here, or PCRs 0-9 extended after the kernel started.
	for name, boot := range map[string]func(m *measuredDevice) map[int][]byte{
		"another boot's pcrs": func(m *measuredDevice) map[int][]byte {
			return replayedPCRs(t, readLog(t, "coreos_36_shielded_vm_no_secure_boot_eventlog"))
		},
		"pcrs 0-7 only": func(m *measuredDevice) map[int][]byte {
			p := replayedPCRs(t, m.raw)
			delete(p, 8)
			delete(p, 9)
			return p
		},
	} {
		// An IMA log whose entries were extended into PCR 10, so that they replay, but whose
		// boot_aggregate is not of this boot's PCRs 0-9: a log made on another machine or
		// boot with its entries extended here, or PCRs 0-9 extended after the kernel started.
		t.Run("ima boot_aggregate of "+name, func(t *testing.T) {
			a, dir, cas := open(t)
			m := newMeasuredDevice(t, a, dir, cas, logName, 0)
			log, extends, _ := imaLog(5, boot(m))
			for _, e := range extends {
				if err := a.Extend(context.Background(), deviceapi.IMAPCR, e); err != nil {
					t.Fatal(err)
				}
			}
			ev := m.evidence(t)
			ev.IMALog = log
			wantStatus(t, m.verify(roundTrip(t, ev, decodeEvidence), m.policy()), deviceapi.StatusContraindicated, GrantNone, ReasonIMABootAggregate)
		})
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence)
		pol    func(t *testing.T, m *measuredDevice, p *Policy)
		status deviceapi.Status
		grant  Grant
		rule   string
	}{
		{name: "log of another boot", rule: ReasonBootLogReplay, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				ev.EventLog = readLog(t, "coreos_36_shielded_vm_no_secure_boot_eventlog")
			}},
		{name: "application digest changed", rule: ReasonBootLogReplay, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				app, _ := hex.DecodeString(slices.Collect(maps.Keys(bootRefs(t, m.raw, false)))[0])
				i := bytes.Index(ev.EventLog, app)
				if i < 0 {
					t.Fatal("application digest not in the log")
				}
				ev.EventLog[i] ^= 1
			}},
		{name: "truncated", rule: ReasonBootLogMalformed, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				ev.EventLog = ev.EventLog[:len(ev.EventLog)-7]
			}},
		{name: "unknown event type", rule: ReasonBootLogMalformed, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				// pcr 4, EV_EFI_BOOT_SERVICES_APPLICATION becomes a type no specification defines;
				// the type is not hashed, so the log still replays.
				i := bytes.Index(ev.EventLog, []byte{4, 0, 0, 0, 3, 0, 0, 0x80})
				if i < 0 {
					t.Fatal("no application event")
				}
				ev.EventLog[i+5] = 0x7f
			}},
		{name: "quote omits pcrs 0-9", rule: ReasonQuotePCRs, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				q, err := m.d.a.Quote(context.Background(), []int{deviceapi.AgentPCR}, deviceapi.QualifyingData(ev.Nonce, ev.CertKey))
				if err != nil {
					t.Fatal(err)
				}
				ev.Quote, ev.QuoteSignature, ev.PCRs = q.Quote, q.Signature, q.PCRs
			}},
		{name: "ima log falls short of the quote", rule: ReasonIMAAggregate, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				ev.IMALog, _, _ = imaLog(19, replayedPCRs(t, m.raw))
			}},
		{name: "ima log entry changed", rule: ReasonIMAAggregate, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				i := bytes.Index(ev.IMALog, []byte("/usr/lib/app/file-00007.so"))
				if i < 0 {
					t.Fatal("entry 7 not in the ima log")
				}
				ev.IMALog[i+len("/usr/lib/app/file-0000")] = '8' // its path, which its template hash covers
			}},
		{name: "ima log malformed", rule: ReasonIMALogMalformed, status: deviceapi.StatusContraindicated,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) {
				ev.IMALog = ev.IMALog[:len(ev.IMALog)-1]
			}},
		{name: "secure boot required", rule: ReasonSecureBootOff, status: deviceapi.StatusContraindicated, grant: GrantUpdateOnly,
			pol: func(t *testing.T, m *measuredDevice, p *Policy) { p.RequireSecureBoot = true }},
		{name: "unknown boot component", rule: ReasonUnknownBoot, status: deviceapi.StatusContraindicated, grant: GrantUpdateOnly,
			pol: func(t *testing.T, m *measuredDevice, p *Policy) { p.RequireBootLog = true }},
		{name: "revoked boot component", rule: ReasonRevokedBoot, status: deviceapi.StatusContraindicated, grant: GrantUpdateOnly,
			pol: func(t *testing.T, m *measuredDevice, p *Policy) { p.BootReferences = bootRefs(t, m.raw, true) }},
		{name: "agent-only under a boot log policy", rule: ReasonBootLogMissing, status: deviceapi.StatusContraindicated, grant: GrantUpdateOnly,
			tamper: func(t *testing.T, m *measuredDevice, ev *deviceapi.Evidence) { ev.EventLog = nil },
			pol: func(t *testing.T, m *measuredDevice, p *Policy) {
				p.RequireBootLog, p.BootReferences = true, bootRefs(t, m.raw, false)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, dir, cas := open(t)
			m := newMeasuredDevice(t, a, dir, cas, logName, 20)
			ev := m.evidence(t)
			if tc.tamper != nil {
				tc.tamper(t, m, ev)
			}
			ev = roundTrip(t, ev, decodeEvidence)
			pol := m.policy()
			if tc.pol != nil {
				tc.pol(t, m, &pol)
			}
			r := m.verify(ev, pol)
			wantStatus(t, r, tc.status, tc.grant, tc.rule)
		})
	}
}

func TestMeasuredBootSoftware(t *testing.T) {
	runMeasuredBoot(t, func(t *testing.T) (agent.Attester, string, *ManufacturerCAs) {
		dir := t.TempDir()
		a, err := agent.OpenSoftware(dir, "boot-1")
		if err != nil {
			t.Fatal(err)
		}
		return a, dir, nil
	})
}

func TestMeasuredBootSWTPM(t *testing.T) {
	runMeasuredBoot(t, func(t *testing.T) (agent.Attester, string, *ManufacturerCAs) {
		addr, caPEM := startSWTPM(t)
		cas, err := ParseManufacturerCAs(caPEM)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		a, err := agent.Open(context.Background(), agent.Config{Spec: "swtpm:" + addr, StateDir: dir, BootID: "boot-1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a, dir, cas
	})
}

// TestLegacyAgentPCRs: a boot whose log an older agent began on PCRs 12-15 keeps that layout
// until the reboot, and the verifier accepts it, labelled, as it accepts an older agent's
// quote of 12-15 alone.
func TestLegacyAgentPCRs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	rel := release(t, "1.0.0")
	// What an older agent left: its events on 12-15, extended.
	var events []deviceapi.Event
	for _, c := range rel[:2] {
		pcr, _ := deviceapi.LegacyPCRFor(c.typ)
		if err := a.Extend(ctx, pcr, c.digest); err != nil {
			t.Fatal(err)
		}
		events = append(events, deviceapi.Event{PCR: pcr, Digest: hex.EncodeToString(c.digest), Type: c.typ, Name: c.name, Version: c.version})
	}
	saved, _ := json.Marshal(map[string]any{"boot_id": "boot-1", "events": events})
	if err := os.WriteFile(filepath.Join(dir, "measurements.json"), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, a, dir, rel[2:]) // the new agent measures the rest
	if !d.log.Legacy() || d.log.Events[3].PCR != 15 {
		t.Fatalf("the new agent left the legacy layout: %+v", d.log.Events)
	}
	s := newServer(t)
	en := s.enroll(t, d, nil, nil)
	pol := Policy{AcceptSoftware: true, References: referencesFor(rel)}
	verify := func(ev *deviceapi.Evidence) *Result {
		return s.v.Verify(ctx, Input{Evidence: ev, Device: en.dev, Tenant: testTenant, Policy: pol})
	}
	ev := d.collect(t, en.dev.ID, en.resp.Nonce, nil)
	r := verify(ev)
	if r.Grant != GrantNormal || r.Boot == nil || !r.Boot.LegacyPCRs || !slices.ContainsFunc(r.Reasons, func(re deviceapi.Reason) bool { return re.Code == ReasonLegacyPCRs }) {
		t.Fatalf("legacy evidence: %s/%s %v boot %+v", r.Status, r.Grant, r.Reasons, r.Boot)
	}
	// An older agent quotes 12-15 alone.
	ch, err := s.v.Challenge(ctx, en.dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	ev = d.collect(t, en.dev.ID, ch.Nonce, nil)
	q, err := a.Quote(ctx, deviceapi.LegacyAgentPCRs, deviceapi.QualifyingData(ev.Nonce, ev.CertKey))
	if err != nil {
		t.Fatal(err)
	}
	ev.Quote, ev.QuoteSignature, ev.PCRs = q.Quote, q.Signature, q.PCRs
	if r := verify(roundTrip(t, ev, decodeEvidence)); r.Grant != GrantNormal || r.Boot.Evidence != EvidenceAgentOnly {
		t.Fatalf("older agent's evidence: %s/%s %v", r.Status, r.Grant, r.Reasons)
	}
}

// TestServiceRefusesBadPlatformLogs: through the service, each bad firmware or IMA log is
// refused with its reason, stored and audited, and changes nothing else: no certificate, and
// the device's last measurements stay those of its last good attestation.
func TestServiceRefusesBadPlatformLogs(t *testing.T) {
	ctx := context.Background()
	h := newServiceHarness(t)
	dir := t.TempDir()
	a, err := agent.OpenSoftware(dir, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	m := &measuredDevice{raw: readLog(t, "ubuntu_2104_shielded_vm_no_secure_boot_eventlog"), rel: release(t, "1.0.0")}
	extendLog(t, a, m.raw)
	evPath := filepath.Join(dir, "binary_bios_measurements")
	if err := os.WriteFile(evPath, m.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	h.refs["thermostat"] = referencesFor(m.rel)
	d := newDevice(t, a, dir, m.rel)
	d.platform = agent.PlatformLogs{EventLog: evPath, IMALog: "-"}
	resp := h.enroll(t, d)
	if _, err := h.svc.Claim(ctx, admin, h.tenant.ID, resp.DeviceID, "thermostat", "Development"); err != nil {
		t.Fatal(err)
	}
	if err := h.st.SetAttestationPolicy(ctx, admin, h.tenant.ID, "thermostat", store.AttestationPolicy{AcceptSoftware: true}); err != nil {
		t.Fatal(err)
	}
	if out := h.attest(t, d, resp, ""); len(out.Certificate) == 0 {
		t.Fatalf("good evidence: %s %v", out.Status, out.Reasons)
	}
	if rec := h.lastResult(t, resp.DeviceID); rec.BootState == nil || rec.Rule != ReasonSoftwareAttester {
		t.Fatalf("stored result %+v", rec)
	}
	measurements := func() int {
		var n int
		if err := storetest.QueryRow(ctx, h.st, `SELECT COUNT(*) FROM device_measurements WHERE device_id = $1`, resp.DeviceID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := measurements()
	other := readLog(t, "coreos_36_shielded_vm_no_secure_boot_eventlog")
	ima, _, _ := imaLog(5, replayedPCRs(t, m.raw))
	for _, tc := range []struct {
		name   string
		tamper func(ev *deviceapi.Evidence)
		code   string
	}{
		{"another boot's log", func(ev *deviceapi.Evidence) { ev.EventLog = other }, ReasonBootLogReplay},
		{"truncated log", func(ev *deviceapi.Evidence) { ev.EventLog = ev.EventLog[:len(ev.EventLog)/2] }, ReasonBootLogMalformed},
		{"ima log of another boot", func(ev *deviceapi.Evidence) { ev.IMALog = ima }, ReasonIMAAggregate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := h.svc.Challenge(ctx, resp.DeviceID)
			if err != nil {
				t.Fatal(err)
			}
			ev := d.collect(t, resp.DeviceID, ch.Nonce, nil)
			tc.tamper(ev)
			out, err := h.svc.Attest(ctx, roundTrip(t, ev, decodeEvidence), "")
			if err != nil {
				t.Fatal(err)
			}
			refusedWith(t, out, tc.code)
			if rec := h.lastResult(t, resp.DeviceID); rec.Rule != tc.code || rec.Granted != "none" || rec.TenantID != h.tenant.ID {
				t.Errorf("stored refusal %+v", rec)
			}
			recs, _, err := h.st.ListAudit(ctx, h.tenant.ID, store.AuditFilter{Action: "device.attest"}, store.Page{Limit: 100})
			if err != nil || len(recs) == 0 || !strings.Contains(fmt.Sprint(recs[len(recs)-1].Details), tc.code) {
				t.Errorf("audit records %+v, %v", recs, err)
			}
			if n := measurements(); n != before {
				t.Errorf("a refusal changed the device's measurements: %d, was %d", n, before)
			}
		})
	}
}
