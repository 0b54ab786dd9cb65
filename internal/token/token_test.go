package token

import "testing"

func TestGenerate(t *testing.T) {
	s1, h1 := Generate()
	s2, h2 := Generate()
	if s1 == s2 || h1 == h2 {
		t.Fatal("two secrets are equal")
	}
	if !WellFormed(s1) || Hash(s1) != h1 {
		t.Fatalf("secret %q does not check out", s1)
	}
	for _, bad := range []string{"", "rpt_", "abc", "rpt_" + "0000000000000000000000000000000!", s1 + "a"} {
		if WellFormed(bad) {
			t.Errorf("WellFormed(%q) = true", bad)
		}
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		have, need Role
		want       bool
	}{
		{Admin, Reader, true}, {Admin, Admin, true}, {Operator, Admin, false},
		{Operator, Operator, true}, {Reader, Operator, false}, {Role("x"), Reader, false},
	}
	for _, tt := range tests {
		if got := tt.have.Allows(tt.need); got != tt.want {
			t.Errorf("%s.Allows(%s) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
	if _, err := ParseRole("root"); err == nil {
		t.Error("ParseRole(root) accepted")
	}
}
