package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// decideLending chooses between huge pages and lending: lend with the
// largest folios whose size divides a slot, advised or not.
func decideLending(thp fs.FS, pageBytes, slotBytes int64) Lending {
	advised, errA := maxShmemFolio(thp, pageBytes, true)
	plain, errP := maxShmemFolio(thp, pageBytes, false)
	switch {
	case errA != nil || errP != nil:
		return Lending{Why: fmt.Sprintf("cannot read the huge page settings: %v", errors.Join(errA, errP))}
	case slotBytes%advised == 0:
		return Lending{On: true, FolioBytes: advised, Advised: advised > plain}
	case slotBytes%plain == 0:
		return Lending{On: true, FolioBytes: plain}
	}
	return Lending{FolioBytes: plain, Why: fmt.Sprintf("slots of %d bytes are not a multiple of the %d-byte folios the host's huge page settings allow", slotBytes, plain)}
}

// maxShmemFolio returns the largest folio the kernel may give a memory
// file (memfd) whose mapping is advised for huge pages or not, read from
// the transparent huge page settings in thp (the folder
// /sys/kernel/mm/transparent_hugepage), never less than pageBytes. A
// missing folder is a kernel without transparent huge pages.
//
// It errs on the large side: a setting it does not know counts as on. The
// top-level shmem_enabled governs PMD-sized folios (hpage_pmd_size) and
// every size set to "inherit"; hugepages-<N>kB/shmem_enabled governs size N.
// "always" and "within_size" apply to every mapping (the slab's file is
// sized once, so everything is within its size), "advise" to advised ones,
// "force" to all sizes, "never" and "deny" to none.
func maxShmemFolio(thp fs.FS, pageBytes int64, advised bool) (int64, error) {
	top, err := readSetting(thp, "shmem_enabled")
	if errors.Is(err, fs.ErrNotExist) {
		return pageBytes, nil
	}
	if err != nil {
		return 0, err
	}
	on := func(v string, inherit bool) bool {
		switch v {
		case "never", "deny":
			return false
		case "advise":
			return advised
		case "inherit":
			return inherit
		}
		return true // always, within_size, force, or unknown
	}
	topOn := on(top, false)
	largest := pageBytes
	if topOn || top == "force" {
		pmd, err := readSetting(thp, "hpage_pmd_size")
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(pmd, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("hpage_pmd_size %q", pmd)
		}
		largest = max(largest, n)
	}
	dirs, err := fs.ReadDir(thp, ".")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		kb, ok := strings.CutPrefix(d.Name(), "hugepages-")
		if !ok || !d.IsDir() {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(kb, "kB"), 10, 64)
		if err != nil || !strings.HasSuffix(kb, "kB") {
			return 0, fmt.Errorf("%s: not a size", d.Name())
		}
		v, err := readSetting(thp, d.Name()+"/shmem_enabled")
		if errors.Is(err, fs.ErrNotExist) {
			continue // anonymous memory only (kernels before 6.11)
		}
		if err != nil {
			return 0, err
		}
		if top == "force" || on(v, topOn) {
			largest = max(largest, n<<10)
		}
	}
	return largest, nil
}

// readSetting reads a sysfs setting: the word in brackets of a choice
// ("always [never]"), or the whole text.
func readSetting(thp fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(thp, name)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '['); i >= 0 {
		if j := strings.IndexByte(s[i:], ']'); j > 0 {
			return s[i+1 : i+j], nil
		}
	}
	return s, nil
}
