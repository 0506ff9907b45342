// Package cache holds what the edge keeps in memory: a byte-budgeted
// ristretto cache of object slices, whole playlists and object metadata
// (Cache), the purge generations folded into every cache key
// (Generations), and the coalescing of concurrent origin fetches (Group).
//
// # Keys
//
// An entry is named by (object key, generation, kind, index). The object key
// is hashed twice with independent maphash seeds: the first hash, mixed with
// the generation, kind and index, is the ristretto key; the second is kept in
// the entry together with the generation, kind and index and compared on
// every Get, so two names that collide on the 64-bit ristretto key can never
// be confused (the residual risk is a 128-bit collision). Building a name
// costs two hashes of the key and no allocation; the token is never part of
// it.
//
// # Generations
//
// Purge is O(1) per prefix and never walks the cache. Every artist, album and
// song folder has a generation: the sequence number of the last purge that
// covered it (0 if none), and a purge of everything raises a global floor. An
// object's generation is the largest of its folders' and the floor. Each
// purge takes a fresh, larger sequence number, so it changes the generation
// of every object below the purged folder: entries filled under the old one
// are unreachable at once and age out of ristretto by eviction. A fetch that
// started before a purge stores its result under the generation it started
// with, so it cannot repopulate the new one.
package cache
