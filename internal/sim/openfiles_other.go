//go:build !unix

package sim

// CheckOpenFiles has no descriptor limit to check outside Unix.
func CheckOpenFiles(devices, perDevice int) error { return nil }
