// Package tuf owns Rampart's update metadata: offline key sets, the image
// repository's TUF roles and the per-device director metadata.
package tuf

import (
	_ "github.com/theupdateframework/go-tuf/v2/metadata"
)
