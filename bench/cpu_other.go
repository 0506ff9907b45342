//go:build !unix

package bench

// readCPU is not implemented here: the report says 0 cores.
func readCPU() cpuTimes { return cpuTimes{} }
