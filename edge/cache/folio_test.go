package cache

import (
	"testing"
	"testing/fstest"
)

// thpFS is a transparent_hugepage folder: the top-level shmem_enabled and
// the per-size ones, as the kernel shows them (the choice in brackets).
func thpFS(top string, sizes map[string]string) fstest.MapFS {
	choice := func(v string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("always within_size advise never deny force [" + v + "]\n")}
	}
	fsys := fstest.MapFS{"hpage_pmd_size": {Data: []byte("2097152\n")}, "enabled": {Data: []byte("always [madvise] never\n")}}
	if top != "" {
		fsys["shmem_enabled"] = choice(top)
	}
	for size, v := range sizes {
		fsys["hugepages-"+size+"/shmem_enabled"] = choice(v)
		fsys["hugepages-"+size+"/enabled"] = choice("never")
	}
	return fsys
}

func TestMaxShmemFolioAndLending(t *testing.T) {
	const page, mib = 4096, 1 << 20
	debian := map[string]string{"16kB": "never", "64kB": "never", "2048kB": "inherit"}
	mthp := map[string]string{"16kB": "never", "64kB": "advise", "2048kB": "inherit"}
	for _, tc := range []struct {
		name          string
		fsys          fstest.MapFS
		advised, flat int64 // largest folio with and without MADV_HUGEPAGE
		slot          int64
		want          Lending
	}{
		{"no transparent huge pages", fstest.MapFS{}, page, page, mib, Lending{On: true, FolioBytes: page}},
		{"Debian's defaults", thpFS("never", debian), page, page, mib, Lending{On: true, FolioBytes: page}},
		{"64 KiB folios on advice", thpFS("never", mthp), 64 << 10, page, mib, Lending{On: true, FolioBytes: 64 << 10, Advised: true}},
		{"2 MiB on advice: 1 MiB slots do without the advice", thpFS("advise", debian), 2 * mib, page, mib, Lending{On: true, FolioBytes: page}},
		{"2 MiB on advice, 2 MiB slots take it", thpFS("advise", mthp), 2 * mib, page, 2 * mib, Lending{On: true, FolioBytes: 2 * mib, Advised: true}},
		{"2 MiB always: 1 MiB slots cannot lend", thpFS("always", debian), 2 * mib, 2 * mib, mib, Lending{FolioBytes: 2 * mib}},
		{"within_size counts as always", thpFS("within_size", nil), 2 * mib, 2 * mib, 4 * mib, Lending{On: true, FolioBytes: 2 * mib}},
		{"force enables every size", thpFS("force", map[string]string{"64kB": "never"}), 2 * mib, 2 * mib, mib, Lending{FolioBytes: 2 * mib}},
		{"a size set always without the top", thpFS("never", map[string]string{"128kB": "always", "2048kB": "inherit"}), 128 << 10, 128 << 10, mib, Lending{On: true, FolioBytes: 128 << 10}},
		{"an unknown setting counts as on", thpFS("never", map[string]string{"32kB": "sometimes"}), 32 << 10, 32 << 10, 48 << 10, Lending{FolioBytes: 32 << 10}},
		{"a slot not a multiple of the page", thpFS("never", debian), page, page, mib + 100, Lending{FolioBytes: page}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct {
				advised bool
				want    int64
			}{{true, tc.advised}, {false, tc.flat}} {
				got, err := maxShmemFolio(tc.fsys, page, c.advised)
				if err != nil || got != c.want {
					t.Errorf("maxShmemFolio(advised %v) = %d, %v; want %d", c.advised, got, err, c.want)
				}
			}
			got := decideLending(tc.fsys, page, tc.slot)
			if got.On != tc.want.On || got.FolioBytes != tc.want.FolioBytes || got.Advised != tc.want.Advised {
				t.Errorf("decideLending(slot %d) = %+v, want %+v", tc.slot, got, tc.want)
			}
			if got.On == (got.Why != "") {
				t.Errorf("decideLending: On %v with reason %q", got.On, got.Why)
			}
		})
	}
	bad := thpFS("always", nil)
	bad["hpage_pmd_size"] = &fstest.MapFile{Data: []byte("huge\n")}
	if l := decideLending(bad, page, mib); l.On || l.Why == "" {
		t.Errorf("unreadable settings: %+v, want no lending and a reason", l)
	}
}
