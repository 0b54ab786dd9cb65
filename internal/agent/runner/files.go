package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/agent/update"
)

func readInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// writeInt replaces path with n, atomically and durably.
func writeInt(path string, n int) error {
	return durable.WriteFile(path, []byte(strconv.Itoa(n)+"\n"))
}

func runCommand(ctx context.Context, argv []string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", argv[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// HealthTimeout bounds one run of the health-check command.
const HealthTimeout = 5 * time.Minute

// HealthCommand is the health check of --health-cmd: argv runs after the reboot into a new
// release, before it is committed, with RAMPART_RELEASE and RAMPART_SLOT in its environment; it
// passes when it exits 0 within HealthTimeout. Its last line of output is the failure's reason.
func HealthCommand(argv []string) update.HealthFunc {
	return func(ctx context.Context, b update.Boot) error {
		ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "RAMPART_RELEASE="+b.Info.Release, "RAMPART_SLOT="+b.Slot)
		out, err := cmd.CombinedOutput()
		if err != nil {
			line := update.LastLine(out, 300)
			if ctx.Err() != nil {
				return fmt.Errorf("%s did not finish within %s", argv[0], HealthTimeout)
			}
			if line == "" {
				return fmt.Errorf("%s: %v", argv[0], err)
			}
			return fmt.Errorf("%s: %v: %s", argv[0], err, line)
		}
		return nil
	}
}
