package token

import (
	"strings"
	"testing"
)

func TestResearcherTokens(t *testing.T) {
	secret, hash := GenerateResearcher()
	if !ResearcherWellFormed(secret) || WellFormed(secret) {
		t.Errorf("researcher token %q: ResearcherWellFormed %v, WellFormed %v", secret, ResearcherWellFormed(secret), WellFormed(secret))
	}
	if Hash(secret) != hash {
		t.Error("hash mismatch")
	}
	api, _ := Generate()
	if ResearcherWellFormed(api) {
		t.Error("an API token passes as a researcher token")
	}
	for _, bad := range []string{"", "rrt_", "rrt_" + strings.Repeat("a", 31), "rrt_" + strings.Repeat("1", 32)} {
		if ResearcherWellFormed(bad) {
			t.Errorf("ResearcherWellFormed(%q) = true", bad)
		}
	}
}
