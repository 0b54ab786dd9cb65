package durable

import (
	"os"
	"sync"
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

// Known remembers, per file path, a value derived from reading the file (its digest, the record
// it matched) with the Version of the file it was read from, so that a caller reads the file
// again only when it changed. A value is kept only when its version was Settled at the moment
// the file was examined; anything else is forgotten. The zero value is ready; it is safe for
// concurrent use.
type Known[V any] struct {
	// Now is the clock a version is settled against; time.Now when nil (tests set it).
	Now func() time.Time

	mu sync.Mutex
	m  map[string]known[V]
}

type known[V any] struct {
	version Version
	value   V
}

// Examined is the moment a file is examined, to be taken before it is opened and given to Put.
func (k *Known[V]) Examined() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Get returns the value kept for path when it was read from version v of the file.
func (k *Known[V]) Get(path string, v Version) (V, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[path]
	if !ok || e.version != v {
		var zero V
		return zero, false
	}
	return e.value, true
}

// Put keeps value for path, read from version v of the file examined at examined, when v was
// settled then; otherwise it forgets path.
func (k *Known[V]) Put(path string, v Version, examined time.Time, value V) {
	if !v.Settled(examined) {
		k.Forget(path)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]known[V]{}
	}
	k.m[path] = known[V]{version: v, value: value}
}

// Forget drops what is kept for path.
func (k *Known[V]) Forget(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, path)
}
