package crash

import (
	"encoding/json"
	"os"
	"testing"
)

func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}

// FuzzParseJournalExport checks that any spool file in the journal export
// format either parses into reports that pass the server's validation once
// completed, or fails cleanly.
func FuzzParseJournalExport(f *testing.F) {
	b, err := os.ReadFile("testdata/spool/sensord.coredump")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("COREDUMP_SIGNAL=11\nCOREDUMP_EXE=/x\nCOREDUMP_TIMESTAMP=1772366400000000\n\n"))
	c := &Collector{}
	f.Fuzz(func(t *testing.T, b []byte) {
		reps, err := parseJournalExport(b)
		if err != nil {
			return
		}
		for i := range reps {
			c.complete(&reps[i])
			_ = reps[i].Validate()
		}
	})
}

// FuzzParseSpoolJSON checks the application crash file parser the same way.
func FuzzParseSpoolJSON(f *testing.F) {
	for _, n := range []string{"testdata/spool/sensord-segv.json", "testdata/spool/gatewayd-panic.json"} {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := &Collector{}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseSpoolJSON(b, 0)
		if err != nil {
			return
		}
		c.complete(&r)
		if r.ID == "" || r.Version == "" {
			t.Fatalf("completed report lacks id or version: %+v", r)
		}
	})
}
