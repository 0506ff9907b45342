//go:build !linux

package packager

import "os/exec"

// contain is a no-op where the kernel offers no parent-death signal:
// CommandContext kills the process when its context ends.
func contain(cmd *exec.Cmd) {}
