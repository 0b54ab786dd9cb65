package sim

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// BytesPerDevice is about what one simulated device keeps on its disk: two A/B slots of the
// default 256 KiB image, a staging copy, its keys, certificates and TUF metadata, and a margin.
const BytesPerDevice = 768 << 10

// MemoryDirRoot is the tmpfs MemoryDir makes its folders under.
var MemoryDirRoot = "/dev/shm"

// MemoryDir makes a new folder on tmpfs (MemoryDirRoot) for the disks of a fleet of devices
// simulated devices, when tmpfs has room for them within half of the memory available to the
// machine; otherwise it returns an error that says why. The simulated devices' disks are not what
// a run measures: on a real disk their fsyncs and renames were a third of the simulator's CPU.
// The agent still makes every fsync it relies on; tmpfs only makes them cheap. The caller removes
// the folder, which holds memory until it does.
func MemoryDir(devices int) (string, error) {
	need := int64(devices)*BytesPerDevice + 64<<20
	free, err := freeBytes(MemoryDirRoot)
	if err != nil {
		return "", fmt.Errorf("no tmpfs for the simulated devices: %w", err)
	}
	avail, err := memAvailable()
	if err != nil {
		return "", fmt.Errorf("no tmpfs for the simulated devices: %w", err)
	}
	if need > free || need > avail/2 {
		return "", fmt.Errorf("the simulated devices need about %d MiB; %s has %d MiB free and half the available memory is %d MiB",
			need>>20, MemoryDirRoot, free>>20, avail>>21)
	}
	dir, err := os.MkdirTemp(MemoryDirRoot, "rampart-devices-")
	if err != nil {
		return "", fmt.Errorf("no tmpfs for the simulated devices: %w", err)
	}
	return dir, nil
}

// memAvailable is MemAvailable of /proc/meminfo, in bytes.
func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo: %w", err)
		}
		return kib << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/meminfo has no MemAvailable")
}
