package api

import (
	"regexp"
	"strings"
)

var (
	// Tenant names are the first label of their SPIFFE trust domain (spiffe://<tenant>.<suffix>/...),
	// so they are DNS labels.
	tenantName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	// Product and group names are shown to people: letters, digits, spaces, dot, dash, underscore.
	displayName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9 ._-]{0,62}[A-Za-z0-9._-])?$`)
	deviceID    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func checkTenantName(s string) error {
	if !tenantName.MatchString(s) {
		return badRequest("tenant name %q must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit", s)
	}
	return nil
}

func checkName(kind, s string) error {
	if !displayName.MatchString(s) {
		return badRequest("%s name %q must be 1-64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit", kind, s)
	}
	return nil
}

func checkDescription(s string) error {
	if len(s) > 500 || strings.ContainsAny(s, "\x00\r\n") {
		return badRequest("description must be one line of at most 500 bytes")
	}
	return nil
}

func checkDeviceID(s string) error {
	if !deviceID.MatchString(s) {
		return badRequest("device ID %q must be 64 lowercase hex digits (the SHA-256 of the device's identity key)", s)
	}
	return nil
}
