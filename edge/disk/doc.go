// Package disk is the edge's second cache tier: media slices kept as files
// in a local folder (`riff edge -disk-cache DIR -disk-cache-bytes N`), so
// that a restarted edge serves what it served before without asking the
// origin, and so that the working set may be larger than RAM.
//
// # What it holds
//
// One file per slice, DIR/slices/xx/<id>.slice, where id is a hash of
// (object key, generation, slice index). A file is written once — to
// DIR/tmp, then renamed into place — and never modified; eviction unlinks
// it. So the pages of a slice file are never rewritten while anyone reads
// them: a response that hands them to the kernel by reference (sendfile)
// keeps the inode, and its pages, alive through the unlink, and a refill of
// the same slice is a new inode. That is the rule cache.Slab cannot give
// (it reuses its slots in place) and the reason a disk hit may go out with
// sendfile.
//
// Each file starts with a header (format.go): magic, the header's own
// CRC-32C, the object key, generation and slice index, the object's size
// and validators (ETag, Content-Type, Last-Modified), and the data's length
// and CRC-32C; the data starts at HeaderBytes (one page, so that it is page
// aligned for sendfile). A file whose header does not parse, whose name
// does not match its header, whose length is not the header's, or whose
// data does not match its checksum is deleted, never served. The data's
// checksum is checked when a slice is first read after a start (Read);
// slices this process wrote are known good.
//
// DIR/generations is the purge log: one line "<generation> <prefix>" per
// purged folder ("*" for everything), appended and fsynced before a purge
// is answered (RecordPurges), compacted at Open. At Open the edge rebuilds
// its cache.Generations from it and Load drops every slice whose
// generation is not its key's current one, so a purged prefix never comes
// back from disk after a restart. Slice files without a readable log are
// all deleted: without the log nothing says which of them were purged.
//
// # Writes, budget, faults
//
// Put queues a slice for a single writer goroutine and never blocks: when
// the queue (Config.QueueBytes) is full the slice is dropped and counted.
// The byte budget (Config.MaxBytes, counted in file sizes) is kept by
// evicting the least recently used files; Read and Open count as uses.
// A write or read error is counted, never returned to a request: the
// caller falls back to the origin. After a write error the writer stops
// writing for Config.ErrorCooldown (a full or read-only disk costs one
// failed attempt per cool-down, not one per slice), and Degraded reports
// it for a metric.
//
// # Imports
//
// disk imports the standard library and golang.org/x/sys only: not package
// edge, not edge/cache (the edge converts metadata and generations at the
// boundary), nothing that does network I/O. A Store is safe for concurrent
// use.
package disk
