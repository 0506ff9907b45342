//go:build unix

package blob

import (
	"io/fs"
	"syscall"
)

// fileID returns the inode number of the file fi describes.
func fileID(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Ino), true
}
