package deviceapi

import (
	"encoding/json"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.1.0", -1},
		{"1.10.0", "1.9.0", 1},
		{"1.0", "1.0.0", 0},
		{"2", "1.99.99", 1},
		{"1.0.0-rc1", "1.0.0", -1},
		{"1.0.0", "1.0.0-rc1", 1},
		{"1.0.0-rc1", "1.0.0-rc2", -1},
		{"1.0.0+abc", "1.0.0+def", 0},
	}
	for _, tc := range tests {
		got, err := CompareVersions(tc.a, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	for _, bad := range []string{"", "v1", "1..2", "1.0.0-", "a.b"} {
		if _, err := CompareVersions(bad, "1.0.0"); err == nil {
			t.Errorf("CompareVersions(%q) succeeded", bad)
		}
	}
}

func FuzzParseImageCustom(f *testing.F) {
	f.Add([]byte(`{"component":"rootfs","version":"1.0.0","security_version":1}`))
	f.Add([]byte(`{"component":"a","version":"1","deltas":[{"from":"00","path":"deltas/x"}]}`))
	f.Add([]byte(`{"component":"../etc","version":"1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw := json.RawMessage(b)
		c, err := ParseImageCustom(&metadata.TargetFiles{Custom: &raw})
		if err != nil {
			return
		}
		if !ComponentRe.MatchString(c.Component) || !ValidVersion(c.Version) {
			t.Fatalf("accepted invalid custom %+v", c)
		}
	})
}
