//go:build !linux

package sim

import "errors"

func freeBytes(string) (int64, error) { return 0, errors.New("tmpfs is only looked for on Linux") }
