package tuf

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

// BenchmarkDirectorIssue measures signing one device's director metadata
// (targets, snapshot, timestamp) beside its ceiling, three bare ed25519
// signatures over payloads of the same size, measured in the same run.
func BenchmarkDirectorIssue(b *testing.B) {
	_, online, _, d := testDirector(b)
	now := time.Now()
	a := Assignment{DeviceID: strings.Repeat("ab", 32), Release: "1.1.0", Images: []Image{
		testImage("rootfs", "1.1.0", "rootfs"), testImage("app", "1.1.0", "app")}}
	f, err := d.Issue(Assignment{DeviceID: a.DeviceID, Version: 1, Release: a.Release, Images: a.Images}, now)
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{len(f.Targets), len(f.Snapshot), len(f.Timestamp)}

	var issue, ceiling float64
	b.Run("issue", func(b *testing.B) {
		b.ReportAllocs()
		v := int64(1)
		for b.Loop() {
			v++
			a.Version = v
			if _, err := d.Issue(a, now); err != nil {
				b.Fatal(err)
			}
		}
		issue = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("ceiling-3-ed25519-signatures", func(b *testing.B) {
		msgs := make([][]byte, len(sizes))
		for i, n := range sizes {
			msgs[i] = make([]byte, n)
		}
		for b.Loop() {
			for _, m := range msgs {
				ed25519.Sign(online.Director.Private, m)
			}
		}
		ceiling = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if issue > 0 {
			b.ReportMetric(issue/ceiling, "issue/ceiling")
		}
	})
}
