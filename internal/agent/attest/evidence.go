package attest

import (
	"context"
	"crypto/x509"
	"fmt"
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

// Collect gathers evidence for the server's nonce: a quote over the Rampart
// PCRs whose extra data binds the nonce and the certificate key, the PCR
// values, the measurement log and the certificate key (with its TPM
// certification on TPM backends). activation is the answer to the
// enrolment's credential activation challenge, or nil.
func Collect(ctx context.Context, a Attester, log *MeasurementLog, deviceID string, nonce, activation []byte) (*deviceapi.Evidence, error) {
	signer, cert, err := a.CertificateKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("attest.Collect: %w", err)
	}
	certKey, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("attest.Collect: certificate key: %w", err)
	}
	q, err := a.Quote(ctx, deviceapi.QuotedPCRs, deviceapi.QualifyingData(nonce, certKey))
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
	}, nil
}
