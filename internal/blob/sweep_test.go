package blob

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestFSSweep leaves what a crashed writer would (a temp file, a sidecar
// whose object was replaced behind the store's back, one whose object is
// gone) next to live objects and a Put in progress, and checks that Sweep
// removes only the stale leftovers.
func TestFSSweep(t *testing.T) {
	s, _ := newTestFS(t)
	mustPut(t, s, "a/live.mp4", []byte("live"), PutOptions{ContentType: "audio/x-live"})
	mustPut(t, s, "a/b/replaced.mp4", []byte("old"), PutOptions{})
	mustPut(t, s, "a/b/gone.mp4", []byte("gone"), PutOptions{})
	dir := s.Dir()
	old := time.Now().Add(-2 * time.Hour)
	age := func(names ...string) {
		for _, n := range names {
			if err := os.Chtimes(n, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	sidecarsOf := func(d string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, d, metaPrefix+"*"))
		return m
	}
	// A crashed Put's temp file, and one in progress (fresh).
	staleTmp := filepath.Join(dir, "a", tmpPrefix+"crashed")
	freshTmp := filepath.Join(dir, "a", "b", tmpPrefix+"writing")
	for _, n := range []string{staleTmp, freshTmp} {
		if err := os.WriteFile(n, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	age(staleTmp)
	// Orphaned sidecars: replaced.mp4 rewritten outside the store (its old
	// sidecar no longer matches), gone.mp4 removed outside the store.
	bSidecars := sidecarsOf("a/b")
	if len(bSidecars) != 2 {
		t.Fatalf("sidecars in a/b = %q, want 2", bSidecars)
	}
	replaced := filepath.Join(dir, "a", "b", "replaced.mp4")
	if err := os.WriteFile(replaced+".x", []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(replaced+".x", replaced); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "a", "b", "gone.mp4")); err != nil {
		t.Fatal(err)
	}
	age(bSidecars...)
	liveSidecars := sidecarsOf("a")
	age(liveSidecars...) // old but live: kept

	st, err := s.Sweep(t.Context(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st != (SweepStats{Temps: 1, Sidecars: 2}) {
		t.Errorf("Sweep = %+v, want 1 temp and 2 sidecars", st)
	}
	exists := func(n string) bool { _, err := os.Stat(n); return err == nil }
	if exists(staleTmp) || !exists(freshTmp) {
		t.Errorf("stale temp kept %v, fresh temp removed %v", exists(staleTmp), !exists(freshTmp))
	}
	if got := sidecarsOf("a/b"); len(got) != 0 {
		t.Errorf("orphaned sidecars left: %q", got)
	}
	if got := sidecarsOf("a"); !slices.Equal(got, liveSidecars) {
		t.Errorf("live sidecars = %q, want %q kept", got, liveSidecars)
	}
	if info, err := s.Stat(t.Context(), "a/live.mp4"); err != nil || info.ContentType != "audio/x-live" {
		t.Errorf("live object after Sweep = %+v, %v; want its sidecar's type", info, err)
	}
	// A second sweep finds nothing.
	if st, err := s.Sweep(t.Context(), time.Hour); err != nil || st != (SweepStats{}) {
		t.Errorf("second Sweep = %+v, %v; want nothing removed", st, err)
	}
}
