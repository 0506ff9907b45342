package catalogd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/testrun"
	"riff/keygen"
)

// childArgsEnv carries the arguments of a catalogd run in a child process
// (TestCatalogdChild), tab-separated.
const childArgsEnv = "RIFF_TEST_CATALOGD_CHILD_ARGS"

// TestCatalogdChild is not a test: it is catalogd's Run in a child process
// that TestKill9MidPackaging starts and kills.
func TestCatalogdChild(t *testing.T) {
	args := os.Getenv(childArgsEnv)
	if args == "" {
		t.Skip("runs only as the child of TestKill9MidPackaging")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := Run(ctx, strings.Split(args, "\t"), noEnv, io.Discard, os.Stderr); err != nil {
		t.Fatal(err)
	}
}

// listeningAddr waits for the "listening" log line of a catalogd and
// returns its address.
func listeningAddr(t *testing.T, logs *testrun.LockedBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "listening" {
				return rec["addr"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no listening line:\n%s", logs)
	return ""
}

// processesNaming returns the pids of processes whose command line
// contains s (Linux /proc).
func processesNaming(t *testing.T, s string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
				continue // a zombie waiting for its parent is not running
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestKill9MidPackaging (issue 14, item 2): catalogd killed with -9 while
// it packages leaves no ffmpeg running (they die with it) and, once it
// starts again on the same -upload-dir, no temporary file.
func TestKill9MidPackaging(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc and relies on Linux's parent-death signal")
	}
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := keygen.Run(context.Background(), []string{"-dir", keys}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"-listen", "127.0.0.1:0", "-db", "file:" + filepath.Join(dir, "riff.db"), "-blob", filepath.Join(dir, "blob"),
		"-keys", keys, "-upload-dir", spool, "-argon2-memory", "64KiB", "-argon2-time", "1",
		"-workers", "1", "-encodes", "2", "-job-lease", "2s"}
	logs := &testrun.LockedBuffer{}
	child := testrun.StartChild(t, "TestCatalogdChild", logs, childArgsEnv+"="+strings.Join(args, "\t"))
	c, song := uploadUntilTranscoding(t, "http://"+listeningAddr(t, logs), "kill", "Nine", 60,
		func() bool { return len(processesNaming(t, spool)) > 0 }, logs)

	if err := child.Process.Kill(); err != nil { // SIGKILL: no cleanup runs
		t.Fatal(err)
	}
	child.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for len(processesNaming(t, spool)) > 0 {
		if time.Now().After(deadline) {
			pids := processesNaming(t, spool)
			for _, pid := range pids { // do not leave them to the next test
				if p, err := os.FindProcess(pid); err == nil {
					p.Kill()
				}
			}
			t.Fatalf("ffmpeg processes %v outlived the catalogd killed with -9", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Start again on the same data: the leftovers go at start, and the job
	// (its lease run out) is done again.
	addr, _, logs2, stop := startRun(t, args...)
	if n := len(spoolFiles(t, spool)); n > 1 { // the new process's lock file only
		t.Errorf("after restart the spool holds %v", spoolFiles(t, spool))
	}
	c = apiClient{t: t, base: "http://" + addr}.login("kill@example.com", "long enough pw")
	deadline = time.Now().Add(3 * time.Minute)
	for {
		var v songView
		c.call("GET", "/songs/"+itoa(song.ID), nil, "", &v)
		if v.Status == store.StatusReady {
			break
		}
		if v.Status != store.StatusProcessing || time.Now().After(deadline) {
			t.Fatalf("after restart: %+v %+v\n%s", v, v.Processing, logs2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
	if files := spoolFiles(t, spool); len(files) != 0 {
		t.Errorf("temporary files left after a clean stop: %v", files)
	}
}

// spoolFiles lists the files under dir (folders left out).
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	return files
}
