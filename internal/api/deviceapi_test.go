package api

import (
	"testing"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// TestDeviceErrorCodesShared holds the codes the agent reads (internal/deviceapi) to the ones
// the API emits.
func TestDeviceErrorCodesShared(t *testing.T) {
	if CodeAttestationRefused != deviceapi.CodeAttestationRefused {
		t.Errorf("api emits %q for a refused attestation; the agent reads %q", CodeAttestationRefused, deviceapi.CodeAttestationRefused)
	}
}
