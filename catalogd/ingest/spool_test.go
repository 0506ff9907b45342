package ingest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestSpoolSweepsOnlyDeadFolders: OpenSpool removes a work folder nobody
// holds (what a killed catalogd left) and keeps a live one's; Close
// removes its own folder and is idempotent.
func TestSpoolSweepsOnlyDeadFolders(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	base := t.TempDir()
	live, n, err := OpenSpool(base)
	if err != nil || n != 0 {
		t.Fatalf("OpenSpool = %v, %d removed", err, n)
	}
	dead := filepath.Join(base, spoolPrefix+"dead")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{spoolLock, "riff-upload-1", "riff-original-2"} {
		if err := os.WriteFile(filepath.Join(dead, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(base, "not-ours")
	os.WriteFile(other, nil, 0o600)

	s, n, err := OpenSpool(base)
	if err != nil || n != 1 {
		t.Fatalf("second OpenSpool = %v, %d removed; want the dead folder only", err, n)
	}
	for path, want := range map[string]bool{dead: false, live.Dir: true, s.Dir: true, other: true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", path, err == nil, want)
		}
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	live.Close()
	if _, err := os.Stat(live.Dir); !os.IsNotExist(err) {
		t.Errorf("Close left %s", live.Dir)
	}
	s.Close()
}
