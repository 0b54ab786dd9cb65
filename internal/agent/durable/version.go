package durable

import (
	"os"
	"time"
)

// Settle is how much older than the moment a file is read its modification and change times
// must be for its Version to stand for its content (Version.Settled).
const Settle = 2 * time.Second

// VersionOf returns the version of the regular file fi describes: its device, inode, size,
// modification and change times. A file whose version is unchanged has the content it had when
// the version was taken, provided the version was Settled then. The change time is the point: no
// write, truncation, rename over the path or permission change leaves it as it was, and only
// the kernel sets it (IMA decides whether to measure a file again the same way, from its inode's
// i_version). ok is false for anything but a regular file, and on platforms where the agent
// does not read these fields: there, callers read the file every time.
func VersionOf(fi os.FileInfo) (v Version, ok bool) {
	if !fi.Mode().IsRegular() {
		return Version{}, false
	}
	return versionOf(fi)
}

// Settled reports whether the file's times were at least Settle older than at, the moment the
// file was read. The kernel stamps files with a coarse clock (a tick, up to 10 ms; whole seconds
// on some file systems), so two writes close together can leave the same version; as git does
// with a "racily clean" index entry, a version taken within Settle of a change is not trusted to
// stand for the content, and the file is read again next time.
func (v Version) Settled(at time.Time) bool {
	limit := at.Add(-Settle)
	return time.Unix(v.mtimeSec, v.mtimeNsec).Before(limit) && time.Unix(v.ctimeSec, v.ctimeNsec).Before(limit)
}
