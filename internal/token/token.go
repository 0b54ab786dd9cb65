// Package token makes and checks API token secrets and names the roles a token may hold. A
// secret is shown once at creation; only its SHA-256 is stored (the secret carries 160 random
// bits, so a slow hash adds nothing). The API, the web console (sign-in), the server (the first
// admin token), the CLI's research verbs and the console's OIDC sign-in (internal/sso) import it.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"strings"

	"github.com/rampartsec/rampart/internal/public"
)

// Role is what a token may do inside its tenant.
type Role string

// Roles, from least to most able.
const (
	Reader   Role = "reader"   // read everything of the tenant
	Operator Role = "operator" // also create and change products, groups, devices, releases, deployments
	Admin    Role = "admin"    // also manage tokens and read the audit log
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Reader, Operator, Admin:
		return r, nil
	}
	return "", public.Errorf(public.Invalid, "role %q is not one of admin, operator, reader", s)
}

// Allows reports whether a token holding r may do what needs need.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() }

func (r Role) rank() int {
	switch r {
	case Reader:
		return 1
	case Operator:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// Prefix starts every Rampart API token, so that secret scanners can recognise one.
const Prefix = "rpt_"

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Generate returns a new secret and the hash to store.
func Generate() (secret, hash string) {
	var b [20]byte
	rand.Read(b[:])
	secret = Prefix + enc.EncodeToString(b[:])
	return secret, Hash(secret)
}

// Hash returns the stored form of a secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return hex.EncodeToString(sum[:])
}

// WellFormed reports whether s looks like a token secret, so that junk is refused before any
// database lookup.
func WellFormed(s string) bool {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := enc.DecodeString(rest)
	return err == nil
}
