package token

import (
	"crypto/rand"
	"strings"
)

// ResearcherPrefix starts every researcher token, so that the two kinds of token are never
// confused: a researcher token opens only the researcher API (/research/v1).
const ResearcherPrefix = "rrt_"

// GenerateResearcher returns a new researcher token secret and the hash to store.
func GenerateResearcher() (secret, hash string) {
	var b [20]byte
	rand.Read(b[:])
	secret = ResearcherPrefix + enc.EncodeToString(b[:])
	return secret, Hash(secret)
}

// ResearcherWellFormed reports whether s looks like a researcher token secret.
func ResearcherWellFormed(s string) bool {
	rest, ok := strings.CutPrefix(s, ResearcherPrefix)
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := enc.DecodeString(rest)
	return err == nil
}
