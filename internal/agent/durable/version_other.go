//go:build !linux

package durable

import "os"

// Version identifies one version of a file's content (VersionOf); outside Linux the agent does
// not read a file's change time, and VersionOf reports no version.
type Version struct {
	mtimeSec, mtimeNsec int64
	ctimeSec, ctimeNsec int64
}

func versionOf(os.FileInfo) (Version, bool) { return Version{}, false }
