package bench

import (
	"runtime"
	"time"
)

// cpuTimes is the process's CPU use at one moment (getrusage).
type cpuTimes struct {
	user, system time.Duration
	ok           bool
}

// saturation is the share of its cores above which bench calls itself
// saturated: its own scheduling then adds latency to what it measures.
const saturation = 0.85

// cpuReport is bench's CPU use between two readings over wall time.
func cpuReport(a, b cpuTimes, wall time.Duration) CPUReport {
	rep := CPUReport{GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if !b.ok || wall <= 0 {
		return rep
	}
	rep.UserSeconds = (b.user - a.user).Seconds()
	rep.SystemSeconds = (b.system - a.system).Seconds()
	rep.Cores = (rep.UserSeconds + rep.SystemSeconds) / wall.Seconds()
	cores := min(rep.GOMAXPROCS, runtime.NumCPU())
	rep.Saturated = rep.Cores >= saturation*float64(cores)
	return rep
}
