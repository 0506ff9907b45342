// Package blob stores Riff's audio objects: uploaded originals and packaged
// renditions, playlists and manifests.
//
// Store is the one interface every component uses. Two implementations
// exist: a local folder (the embedded default, see NewFS) and S3 or any
// S3-compatible service (see NewS3). Open picks one from a URL. Both pass
// the same conformance tests (store_test.go), so code written against one
// behaves the same on the other.
//
// # Keys
//
// Keys are slash-separated paths such as
// "artists/7/albums/3/songs/42/v1/aac_128.mp4" (internal/blobkey builds and
// parses that layout). ValidateKey is the single
// place that decides what a key may look like; every implementation calls
// it before touching storage, so an invalid key is an error and never a
// path outside the store. Beyond the obvious (no empty, "." or ".."
// segments, no leading or trailing slash, no backslash or control
// characters, at most 1024 bytes) it forbids segments that start with a dot
// or are longer than 255 bytes, so that every key is also a portable file
// name and the FS store can keep its bookkeeping in dot-files.
//
// # The folder store (FS)
//
// An object is a plain file at root/key; folders appear and disappear as
// needed. All access goes through an os.Root, so even a symlink planted in
// the tree cannot lead outside it; keys are additionally checked to be
// local names (filepath.IsLocal).
//
// Atomicity: Put writes to a new hidden file ".tmp-<random>" in the
// object's folder, hashing as it copies and checking ctx between reads,
// fsyncs it, and renames it over the key. rename(2) is atomic, so readers
// (who hold open files, not names) see the old object or the new one, never
// a mix; concurrent Puts of one key leave exactly one of the contents. On
// any error or cancellation before the rename, the temp file is removed and
// the old object is untouched. Only a crash can leave a ".tmp-" file; List
// never shows them, and FS.Sweep deletes them, and sidecars whose object
// generation is gone, once they are older than a cutoff (catalogd sweeps at
// start).
//
// Durability: the data is fsynced before the rename and the folder after it
// (plus every parent up to the root when the Put created folders), so a Put
// that returned nil survives power loss. Delete fsyncs the folder too.
//
// ETags and content types: the ETag is the quoted hex of the first 128
// bits of the content's SHA-256, computed while writing; it is a strong
// validator and the same for the same bytes. It and the content type are
// kept in a small sidecar ".meta-<inode>-<mtime>" next to the object,
// written and fsynced before the rename. The sidecar is named after, and
// records the size, mtime and name of, exactly one file generation: rename
// keeps inode and mtime, and every Put creates a new file. So a sidecar can
// never be mistaken for another version's: a stale one (left by a crash, a
// race between processes, or a file copied in by hand) simply does not
// match, and then the ETag falls back to "size-mtime-inode" of the file
// (still changes with every Put) and the content type to ContentTypeFor. No
// window exists in which a reader sees an object with another version's
// ETag. Stat and Get read one small file more; nothing is ever re-hashed.
//
// A Range is served with an io.SectionReader over the open file; the whole
// object is returned as the *os.File itself so io.Copy can use sendfile.
//
// List reads one folder at a time and sorts it so that the order is exactly
// byte-wise key order, as S3 returns it ("a-b" sorts before "a/b", which
// filepath.WalkDir would not do).
//
// Unlike S3, a folder store cannot hold both "a/b" and "a/b/c": the second
// Put fails. Riff's key layout never does this.
//
// # The S3 store
//
// Put streams through the SDK's upload manager: objects up to the part size
// go in one PutObject, larger ones as a multipart upload. A failed or
// cancelled multipart upload is aborted with a context detached from the
// caller's (the manager's own abort uses the cancelled one and fails), so
// no invisible, billed parts remain. ETags are S3's, as given (quoted; the
// MD5 of the content for single-part uploads, "md5-N" for multipart ones).
// Credentials come only from the SDK's default chain, never from URLs or
// flags. A HEAD of a missing object in a missing bucket is also
// ErrNotFound (the answer is a bare 404); S3 answers 403 instead of 404 for
// missing objects when the credentials lack s3:ListBucket, so grant it.
// Readiness checks therefore use Check, which for S3 lists one key and
// fails with the server's reason (NoSuchBucket, SignatureDoesNotMatch, …).
//
// The S3 store passes the conformance suite against gofakes3, in process
// (s3_test.go, with faults injected), and against a real server, versitygw
// run by internal/s3server (s3server_test.go, with what a fake tends to get
// wrong: multipart ETags, aborts, long listings, restarts).
package blob
