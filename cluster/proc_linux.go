package cluster

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd when the process that started it
// dies (a test binary that panics or times out leaves no catalogd or
// HAProxy behind).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
