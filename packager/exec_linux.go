package packager

import (
	"os/exec"
	"syscall"
)

// contain makes cmd die with us: it runs in a process group of its own,
// killed whole when its context ends, and the kernel sends it SIGKILL
// when the thread that started it exits (Pdeathsig), so a catalogd killed
// with -9 leaves no ffmpeg encoding behind. (Go keeps a thread that
// started a child alive unless a goroutine locked to it exits; exec never
// locks one.)
func contain(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		// The negative pid names the process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
