//go:build !unix

package ingest

import "os"

const canLock = false

// tryLock cannot lock here: work folders are neither locked nor swept.
func tryLock(f *os.File) (bool, error) { return false, nil }
