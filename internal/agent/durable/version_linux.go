package durable

import (
	"os"
	"syscall"
)

// Version identifies one version of a file's content (VersionOf).
type Version struct {
	dev, ino            uint64
	size                int64
	mtimeSec, mtimeNsec int64
	ctimeSec, ctimeNsec int64
}

func versionOf(fi os.FileInfo) (Version, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Version{}, false
	}
	return Version{dev: uint64(st.Dev), ino: uint64(st.Ino), size: fi.Size(),
		mtimeSec: int64(st.Mtim.Sec), mtimeNsec: int64(st.Mtim.Nsec),
		ctimeSec: int64(st.Ctim.Sec), ctimeNsec: int64(st.Ctim.Nsec)}, true
}
