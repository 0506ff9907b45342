package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/bench"
)

func TestProcHelpers(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Process.Kill()
	if kids := children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("children(%d) = %v, want %d among them", os.Getpid(), kids, cmd.Process.Pid)
	}
	before := cpuTicks([]int{os.Getpid()})
	for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
	}
	if after := cpuTicks([]int{os.Getpid()}); after <= before {
		t.Errorf("cpuTicks did not grow while spinning: %d → %d", before, after)
	}
}

// TestReport checks the table: means over rounds and riff/nginx ratios.
func TestReport(t *testing.T) {
	rep := func(rps, p99 float64) *bench.Report {
		return &bench.Report{RPS: rps, MBps: rps / 10, Latency: bench.Latency{P99: p99}, HitRatio: 1,
			ByKind: []bench.KindReport{{Kind: "segment", Requests: 10, Latency: bench.Latency{P99: p99}}},
			Origin: &bench.OriginReport{Fetches: 0}}
	}
	c := &compare{s: settings{songs: 8, songLen: time.Minute, duration: time.Second, rounds: 2, cores: 2}}
	results := [][]result{{
		{rep(1000, 10), 40, "riff"}, {rep(500, 20), 30, "nginx"},
		{rep(3000, 30), 40, "riff"}, {rep(1500, 40), 30, "nginx"},
	}}
	var out strings.Builder
	c.report(&out, []load{{name: "flat"}}, results)
	for _, want := range []string{
		"| flat | req/s | 2000 | 1000 | 2.00 |",
		"| flat | p99 ms | 20.00 | 30.00 | 0.67 |",
		"| flat | p99 ms segment | 20.00 | 30.00 | 0.67 |",
		"| flat | server CPU µs/req | 40.0 | 30.0 | 1.33 |",
		"| flat | origin fetches | 0 | 0 | - |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
