package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cgroup is a control group that caps the CPU of one server and counts
// the CPU its processes use: cgroup v2 (cpu.max, cpu.stat) when the cpu
// controller is available on the v2 hierarchy, else v1 (cpu.cfs_quota_us
// in the cpu hierarchy, cpuacct.usage in the cpuacct one, which may be
// the same folder when they are mounted together). It lives at the root
// of its hierarchy, so that it is a leaf whatever the rest of the tree.
// A cgroup is not safe for concurrent use.
type cgroup struct {
	v2      bool
	cpu     string // v2: the group; v1: its folder in the cpu hierarchy
	cpuacct string // v1: its folder in the cpuacct hierarchy (may equal cpu)
}

// cgroupMounts are the hierarchies a cgroup can be made in.
type cgroupMounts struct {
	v2           string // a cgroup2 mount whose cgroup.controllers lists cpu
	cpu, cpuacct string // v1 mounts with the cpu and cpuacct controllers
}

// findCgroupMounts reads /proc/mounts-formatted text; readFile reads a
// v2 mount's cgroup.controllers.
func findCgroupMounts(mounts []byte, readFile func(string) ([]byte, error)) cgroupMounts {
	var m cgroupMounts
	for line := range strings.SplitSeq(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		dir, typ, opts := f[1], f[2], strings.Split(f[3], ",")
		switch typ {
		case "cgroup2":
			ctl, err := readFile(filepath.Join(dir, "cgroup.controllers"))
			if err == nil && slices.Contains(strings.Fields(string(ctl)), "cpu") && m.v2 == "" {
				m.v2 = dir
			}
		case "cgroup":
			if slices.Contains(opts, "cpu") && m.cpu == "" {
				m.cpu = dir
			}
			if slices.Contains(opts, "cpuacct") && m.cpuacct == "" {
				m.cpuacct = dir
			}
		}
	}
	return m
}

// newCgroup makes the group name capped at cores CPUs, enforced every
// period (a short period keeps the stalls of a throttled server short:
// it runs at most cores*period, then waits for the next period).
func newCgroup(m cgroupMounts, name string, cores float64, period time.Duration) (*cgroup, error) {
	periodUS := period.Microseconds()
	quotaUS := int64(cores * float64(periodUS))
	if periodUS < 1000 || periodUS > 1000000 || quotaUS < 1000 {
		return nil, fmt.Errorf("cgroup: period %s and cap %g give a quota of %dµs: the kernel wants a period of 1ms–1s and a quota of 1ms or more", period, cores, quotaUS)
	}
	switch {
	case m.v2 != "":
		// Controllers reach a child only through its parent's subtree_control.
		if err := writeFile(filepath.Join(m.v2, "cgroup.subtree_control"), "+cpu"); err != nil {
			return nil, err
		}
		g := &cgroup{v2: true, cpu: filepath.Join(m.v2, name)}
		if err := os.Mkdir(g.cpu, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if err := writeFile(filepath.Join(g.cpu, "cpu.max"), fmt.Sprintf("%d %d", quotaUS, periodUS)); err != nil {
			g.remove()
			return nil, err
		}
		// The highest weight: on a machine that other work also loads,
		// the capped server still gets its whole quota (the cap, not the
		// neighbours, limits it). Best effort: the cap is what matters.
		_ = writeFile(filepath.Join(g.cpu, "cpu.weight"), "10000")
		return g, nil
	case m.cpu != "" && m.cpuacct != "":
		g := &cgroup{cpu: filepath.Join(m.cpu, name), cpuacct: filepath.Join(m.cpuacct, name)}
		if err := os.Mkdir(g.cpu, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if !g.together() {
			if err := os.Mkdir(g.cpuacct, 0o755); err != nil {
				g.remove()
				return nil, fmt.Errorf("cgroup: %w", err)
			}
		}
		for _, w := range [][2]string{{"cpu.cfs_period_us", strconv.FormatInt(periodUS, 10)}, {"cpu.cfs_quota_us", strconv.FormatInt(quotaUS, 10)}} {
			if err := writeFile(filepath.Join(g.cpu, w[0]), w[1]); err != nil {
				g.remove()
				return nil, err
			}
		}
		_ = writeFile(filepath.Join(g.cpu, "cpu.shares"), "262144") // as cpu.weight above
		return g, nil
	}
	return nil, errors.New("cgroup: no cpu controller: neither a cgroup2 mount with cpu in cgroup.controllers nor cgroup v1 cpu and cpuacct mounts in /proc/mounts")
}

// together reports whether v1's cpu and cpuacct are one folder (mounted
// together, or v2).
func (g *cgroup) together() bool {
	if g.v2 || g.cpu == g.cpuacct {
		return true
	}
	a, errA := filepath.EvalSymlinks(filepath.Dir(g.cpu))
	b, errB := filepath.EvalSymlinks(filepath.Dir(g.cpuacct))
	return errA == nil && errB == nil && a == b
}

func (g *cgroup) dirs() []string {
	if g.together() {
		return []string{g.cpu}
	}
	return []string{g.cpu, g.cpuacct}
}

// String names the group for messages.
func (g *cgroup) String() string {
	if g.v2 {
		return g.cpu + " (cgroup v2)"
	}
	return strings.Join(g.dirs(), " + ") + " (cgroup v1)"
}

// add moves a process (all its threads) into the group.
func (g *cgroup) add(pid int) error {
	for _, d := range g.dirs() {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// procFiles are the cgroup.procs files a process must be written to,
// before it starts, to run in the group (see startInGroup).
func (g *cgroup) procFiles() []string {
	var out []string
	for _, d := range g.dirs() {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	return out
}

// contains reports whether pid is in the group (in every hierarchy).
func (g *cgroup) contains(pid int) bool {
	for _, d := range g.dirs() {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil || !slices.Contains(strings.Fields(string(data)), strconv.Itoa(pid)) {
			return false
		}
	}
	return true
}

// usage is the CPU time the group's processes have used since it was made.
func (g *cgroup) usage() (time.Duration, error) {
	if g.v2 {
		us, err := statField(filepath.Join(g.cpu, "cpu.stat"), "usage_usec")
		return time.Duration(us) * time.Microsecond, err
	}
	data, err := os.ReadFile(filepath.Join(g.cpuacct, "cpuacct.usage"))
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", g.cpuacct, err)
	}
	return time.Duration(ns), nil
}

// throttled is the number of periods in which the cap stopped the group.
func (g *cgroup) throttled() int64 {
	n, _ := statField(filepath.Join(g.cpu, "cpu.stat"), "nr_throttled")
	return n
}

// remove removes the group; its processes must have exited. Removing a
// group that is gone is not an error.
func (g *cgroup) remove() error {
	var errs []error
	for _, d := range g.dirs() {
		var err error
		for range 50 { // exiting processes leave the group a moment later
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}

func statField(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup: %s has no %s", path, key)
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroup: writing %q to %s: %w", value, path, err)
	}
	return nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// inGroup returns the command line that runs name args in the group from
// its first instruction: sh writes its own pid to the group's
// cgroup.procs files, then execs the command (which keeps the pid), so
// that nginx's workers, forked at once, are born inside.
func (g *cgroup) inGroup(name string, args []string) (string, []string) {
	var script bytes.Buffer
	for _, f := range g.procFiles() {
		fmt.Fprintf(&script, "echo $$ > %s || exit 111; ", shellQuote(f))
	}
	script.WriteString(`exec "$@"`)
	return "/bin/sh", append([]string{"-c", script.String(), "sh", name}, args...)
}
