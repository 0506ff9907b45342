//go:build !linux

package cluster

import "os/exec"

// dieWithParent does nothing outside Linux: Close stops the processes.
func dieWithParent(cmd *exec.Cmd) {}
