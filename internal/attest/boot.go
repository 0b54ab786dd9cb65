package attest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	gattest "github.com/google/go-attestation/attest"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// Evidence kinds a BootState reports.
const (
	EvidenceMeasuredBoot = "measured_boot" // the firmware's event log replayed against PCRs 0-9
	EvidenceAgentOnly    = "agent_only"    // only what the agent measured itself
)

// BootState is what the verified evidence says about how the device booted.
// Only events that replayed against the quoted PCRs contribute to it.
type BootState struct {
	// Evidence is EvidenceMeasuredBoot or EvidenceAgentOnly.
	Evidence string `json:"evidence"`
	// LegacyPCRs is true when the agent extended the PCRs older agents used (12-15).
	LegacyPCRs bool `json:"legacy_pcrs,omitempty"`
	// SecureBoot is the firmware's SecureBoot variable as measured into PCR 7.
	SecureBoot bool `json:"secure_boot"`
	// SecureBootUnreadable says why the PCR 7 events, though they replayed, did not
	// describe a consistent Secure Boot state (which then counts as disabled).
	SecureBootUnreadable string `json:"secure_boot_unreadable,omitempty"`
	// DB and DBX summarise the signature databases measured into PCR 7.
	DB  *SignatureDB `json:"db,omitempty"`
	DBX *SignatureDB `json:"dbx,omitempty"`
	// Applications are the EFI applications the firmware loaded (PCR 4): shim,
	// bootloader, kernel or unified kernel image, by their Authenticode SHA-256.
	Applications []BootApplication `json:"applications,omitempty"`
	// KernelCommandLine is the command line when the bootloader logged it.
	KernelCommandLine string `json:"kernel_command_line,omitempty"`
	// IMA summarises the IMA log replayed against PCR 10.
	IMA *IMAState `json:"ima,omitempty"`
}

// SignatureDB summarises a UEFI signature database.
type SignatureDB struct {
	Certificates []string `json:"certificates,omitempty"` // subjects
	Hashes       int      `json:"hashes"`
	// SHA256 is the digest of the database variable's data as measured.
	SHA256 string `json:"sha256,omitempty"`
}

// BootApplication is one EFI application the firmware loaded.
type BootApplication struct {
	Digest string `json:"digest"` // Authenticode SHA-256, lowercase hex
	Known  string `json:"known,omitempty"`
}

// IMAState summarises the IMA log.
type IMAState struct {
	Entries int `json:"entries"`
	Known   int `json:"known"`   // entries whose file digest is a released image
	Unknown int `json:"unknown"` // entries whose file digest is in no release
}

// TCG event types (TCG PC Client Platform Firmware Profile).
const (
	evIPL                    = 0x0000000d
	evLastTCGPCClientEvent   = 0x00000012 // EV_PREBOOT_CERT .. EV_NONHOST_INFO end at EV_OMIT_BOOT_DEVICE_EVENTS
	evFirstEFIEvent          = 0x80000000
	evEFIBootServicesApp     = 0x80000003
	evLastEFIEventBeforeSPDM = 0x80000010 // EV_EFI_HCRTM_EVENT
	evEFIVariableAuthority   = 0x800000e0
	evEFISPDMDeviceAuthority = 0x800000e4
)

// knownEventType reports whether t is an event type the TCG PC Client
// Platform Firmware Profile defines. A log holding any other type is refused:
// its meaning is unknown, so its digest cannot be appraised.
func knownEventType(t uint32) bool {
	switch {
	case t <= evLastTCGPCClientEvent:
		return true
	case t >= evFirstEFIEvent && t <= evLastEFIEventBeforeSPDM:
		return true
	case t >= evEFIVariableAuthority && t <= evEFISPDMDeviceAuthority:
		return true
	}
	return false
}

var (
	errBootLogMalformed = errors.New("boot log malformed")
	errBootLogReplay    = errors.New("boot log does not replay")
)

// checkBootLog parses the firmware's event log, replays it against the quoted
// boot PCRs and returns the boot state read from the events that replayed.
// A quoted boot PCR without a single event in the log must still hold its
// reset value: a log stripped of a PCR's events does not pass.
func checkBootLog(raw []byte, quoted map[int][]byte) (*BootState, error) {
	return checkBootLogWith(raw, quoted, nil)
}

// checkBootLogWith is checkBootLog reading the Secure Boot state through sbc
// (nil: no cache).
func checkBootLogWith(raw []byte, quoted map[int][]byte, sbc *secureBootCache) (*BootState, error) {
	el, err := gattest.ParseEventLog(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBootLogMalformed, err)
	}
	if !slices.Contains(el.Algs, gattest.HashSHA256) {
		return nil, fmt.Errorf("%w: the log has no SHA-256 digests", errBootLogMalformed)
	}
	pcrs := make([]gattest.PCR, 0, len(deviceapi.BootPCRs))
	for _, i := range deviceapi.BootPCRs {
		pcrs = append(pcrs, gattest.PCR{Index: i, Digest: quoted[i], DigestAlg: crypto.SHA256})
	}
	events, err := el.Verify(pcrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBootLogReplay, err)
	}
	extended := make(map[int]bool)
	for _, e := range events {
		if !knownEventType(uint32(e.Type)) {
			return nil, fmt.Errorf("%w: event of unknown type 0x%08x in pcr %d", errBootLogMalformed, uint32(e.Type), e.Index)
		}
		extended[e.Index] = true
	}
	zero := make([]byte, sha256.Size)
	for _, i := range deviceapi.BootPCRs {
		if !extended[i] && !bytes.Equal(quoted[i], zero) {
			return nil, fmt.Errorf("%w: pcr %d was extended but the log has no event for it", errBootLogReplay, i)
		}
	}
	st := &BootState{Evidence: EvidenceMeasuredBoot}
	sbc.read(events, st)
	for _, e := range events {
		switch {
		case e.Index == 4 && uint32(e.Type) == evEFIBootServicesApp:
			st.Applications = append(st.Applications, BootApplication{Digest: hex.EncodeToString(e.Digest)})
		case (e.Index == 8 || e.Index == 9) && uint32(e.Type) == evIPL:
			if c, ok := strings.CutPrefix(string(bytes.TrimRight(e.Data, "\x00")), "kernel_cmdline: "); ok {
				st.KernelCommandLine = c // GRUB logs the command line it boots with
			}
		}
	}
	return st, nil
}

// secureBootCache remembers the Secure Boot state read from the PCR 2 and 7
// events of boot logs that replayed. Those events are the platform's
// configuration (the SecureBoot variable, PK, KEK, db, dbx, the option ROMs'
// drivers), the same on every device of one model and firmware, so a fleet
// shows few distinct ones; reading them (X.509 certificates, hundreds of dbx
// hashes) costs more than replaying the whole log. The key is a SHA-256 over
// each PCR 2 and 7 event's index, type, data and digest, length-prefixed:
// everything go-attestation's ParseSecurebootState reads. Only states read
// without error are kept (an error's message names event positions). The
// events are replayed against the quote at every attestation, cached or not.
type secureBootCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]secureBootRead
}

// maxSecureBootCache bounds the cache; when full it starts again empty.
const maxSecureBootCache = 256

// secureBootRead is what a BootState takes from ParseSecurebootState.
type secureBootRead struct {
	enabled bool
	db, dbx SignatureDB
}

// read sets st's Secure Boot fields from the replayed events. A nil cache reads them every time.
func (c *secureBootCache) read(events []gattest.Event, st *BootState) {
	var key [sha256.Size]byte
	if c != nil {
		h := sha256.New()
		var hdr [16]byte
		for _, e := range events {
			if e.Index != 2 && e.Index != 7 {
				continue
			}
			binary.BigEndian.PutUint32(hdr[0:], uint32(e.Index))
			binary.BigEndian.PutUint32(hdr[4:], uint32(e.Type))
			binary.BigEndian.PutUint32(hdr[8:], uint32(len(e.Data)))
			binary.BigEndian.PutUint32(hdr[12:], uint32(len(e.Digest)))
			h.Write(hdr[:])
			h.Write(e.Data)
			h.Write(e.Digest)
		}
		h.Sum(key[:0])
		c.mu.Lock()
		got, ok := c.m[key]
		c.mu.Unlock()
		if ok {
			got.set(st)
			return
		}
	}
	sb, err := gattest.ParseSecurebootState(events)
	if err != nil {
		// The PCR 7 events replayed but do not describe a consistent Secure Boot
		// state (a debugger, a duplicated or empty variable): not enabled.
		st.SecureBootUnreadable = err.Error()
		return
	}
	got := secureBootRead{enabled: sb.Enabled,
		db: summariseDB(sb.PermittedKeys, sb.PermittedHashes), dbx: summariseDB(sb.ForbiddenKeys, sb.ForbiddenHashes)}
	got.set(st)
	if c != nil {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxSecureBootCache {
			c.m = make(map[[sha256.Size]byte]secureBootRead)
		}
		c.m[key] = got
		c.mu.Unlock()
	}
}

// set copies the state into st: results never share a slice.
func (r secureBootRead) set(st *BootState) {
	st.SecureBoot = r.enabled
	db, dbx := r.db, r.dbx
	db.Certificates, dbx.Certificates = slices.Clone(db.Certificates), slices.Clone(dbx.Certificates)
	st.DB, st.DBX = &db, &dbx
}

// summariseDB names the certificates and counts the hashes of a signature database.
func summariseDB(certs []x509.Certificate, hashes [][]byte) SignatureDB {
	db := SignatureDB{Hashes: len(hashes)}
	for _, c := range certs {
		db.Certificates = append(db.Certificates, c.Subject.String())
	}
	return db
}
