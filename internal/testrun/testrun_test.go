package testrun

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got, want := strings.Count(b.String(), "\n"), 800; got != want {
		t.Errorf("%d lines, want %d", got, want)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q, want a 127.0.0.1 address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on FreeAddr's %s: %v", addr, err)
	}
	ln.Close()
}

func TestGolden(t *testing.T) {
	if Update() {
		t.Skip("-update rewrites golden files; this test checks the comparison")
	}
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Join("testdata", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "sub", "x.golden"), []byte("same"), 0o644); err != nil {
		t.Fatal(err)
	}
	Golden(t, "sub/x.golden", []byte("same"))
}

func TestRequireTool(t *testing.T) {
	if path := RequireTool(t, "go"); path == "" && os.Getenv("CI") != "" {
		t.Error("RequireTool(go) returned no path")
	}
}

func TestFixture(t *testing.T) {
	var f Fixture
	calls := 0
	build := func(tmp string) (string, error) {
		calls++
		dir := filepath.Join(tmp, "blob")
		return dir, os.Mkdir(dir, 0o755)
	}
	dir := f.Dir(t, "riff-testrun-", build)
	if again := f.Dir(t, "riff-testrun-", build); again != dir || calls != 1 {
		t.Errorf("second Dir = %q after %d builds, want %q after 1", again, calls, dir)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	f.Remove()
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Errorf("after Remove, %s: %v, want it gone", filepath.Dir(dir), err)
	}
}
