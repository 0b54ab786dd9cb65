package attest

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	legacy "github.com/google/go-tpm/legacy/tpm2"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// DeviceID returns the device ID of the attester's identity key.
func DeviceID(ctx context.Context, a Attester) (string, error) {
	req, err := a.Enrollment(ctx)
	if err != nil {
		return "", fmt.Errorf("attest.DeviceID: %w", err)
	}
	pub, err := legacy.DecodePublic(req.AKPublic)
	if err != nil {
		return "", fmt.Errorf("attest.DeviceID: identity key: %w", err)
	}
	key, err := pub.Key()
	if err != nil {
		return "", fmt.Errorf("attest.DeviceID: identity key: %w", err)
	}
	id, err := deviceapi.DeviceID(key)
	if err != nil {
		return "", fmt.Errorf("attest.DeviceID: %w", err)
	}
	return id, nil
}

// Default locations of the platform's logs in securityfs.
const (
	DefaultEventLog = "/sys/kernel/security/tpm0/binary_bios_measurements"
	DefaultIMALog   = "/sys/kernel/security/ima/binary_runtime_measurements"
)

// PlatformLogs names the files holding the firmware's TCG event log and the
// kernel's IMA log. A file that does not exist is normal (a board whose
// firmware measures nothing, a kernel without IMA): the evidence then goes
// without it. Empty paths mean the securityfs defaults for the tpm backend,
// whose PCRs those logs describe, and no log for the others (swtpm, the
// simulator and the software bank are not the TPM the firmware measured
// into); "-" means never send that log.
type PlatformLogs struct {
	EventLog string
	IMALog   string
}

// Read returns the logs' contents for a backend, nil for a log that is absent.
func (p PlatformLogs) Read(kind deviceapi.AttesterKind) (eventLog, imaLog []byte, err error) {
	evDefault, imaDefault := "-", "-"
	if kind == deviceapi.KindTPM {
		evDefault, imaDefault = DefaultEventLog, DefaultIMALog
	}
	eventLog, err = readLog(cmp.Or(p.EventLog, evDefault), deviceapi.MaxEventLog)
	if err != nil {
		return nil, nil, err
	}
	imaLog, err = readLog(cmp.Or(p.IMALog, imaDefault), deviceapi.MaxIMALog)
	if errors.Is(err, errLogTooLarge) {
		// The IMA log grows for as long as the device runs. Past the limit the
		// evidence goes without it, as on a device without IMA, rather than the
		// device never attesting again until it reboots.
		imaLog, err = nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return eventLog, imaLog, nil
}

// errLogTooLarge means a platform log is over its limit.
var errLogTooLarge = errors.New("log too large")

// readLog reads a securityfs log (whose size stat does not report) up to limit.
func readLog(path string, limit int64) ([]byte, error) {
	if path == "-" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("platform log: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("platform log %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("platform log %s: %w: over %d bytes", path, errLogTooLarge, limit)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// Collect gathers evidence for the server's nonce: a quote over the Rampart
// PCRs whose extra data binds the nonce and the certificate key, the PCR
// values, the measurement log and the certificate key (with its TPM
// certification on TPM backends), with the platform's event and IMA logs when
// the device has them. activation is the answer to the enrolment's credential
// activation challenge, or nil.
func Collect(ctx context.Context, a Attester, log *MeasurementLog, platform PlatformLogs, deviceID string, nonce, activation []byte) (*deviceapi.Evidence, error) {
	signer, cert, err := a.CertificateKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("attest.Collect: %w", err)
	}
	certKey, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("attest.Collect: certificate key: %w", err)
	}
	q, err := a.Quote(ctx, log.QuotedPCRs(), deviceapi.QualifyingData(nonce, certKey))
	if err != nil {
		return nil, fmt.Errorf("attest.Collect: %w", err)
	}
	// The logs are read after the quote: the kernel goes on measuring files into
	// pcr 10, so a log read first could fall short of the quoted value, while a
	// log read after it holds the quoted entries and perhaps more, which the
	// verifier leaves aside.
	eventLog, imaLog, err := platform.Read(a.Kind())
	if err != nil {
		return nil, fmt.Errorf("attest.Collect: %w", err)
	}
	return &deviceapi.Evidence{
		DeviceID:             deviceID,
		Nonce:                slices.Clone(nonce),
		ActivationSecret:     activation,
		Quote:                q.Quote,
		QuoteSignature:       q.Signature,
		PCRs:                 q.PCRs,
		Log:                  slices.Clone(log.Events),
		CertKey:              certKey,
		CertKeyCertification: cert,
		EventLog:             eventLog,
		IMALog:               imaLog,
	}, nil
}
