//go:build !unix

package blob

import "io/fs"

// fileID reports false: without inode numbers the FS store keeps no
// sidecars, and derives ETags from size and mtime and types from keys.
func fileID(fi fs.FileInfo) (uint64, bool) { return 0, false }
