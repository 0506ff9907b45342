package blobkey

import "strconv"

// The layout (DESIGN.md, "Blob keys"):
//
//	originals/{songID}/{uploadID}.{ext}                      private, never served
//	artists/{a}/                                             artist folder
//	artists/{a}/albums/{b}/                                  album folder
//	artists/{a}/albums/{b}/songs/{s}/                        song folder
//	artists/{a}/albums/{b}/songs/{s}/v{n}/                   version folder
//	.../v{n}/master.m3u8, manifest.mpd                       multivariant playlist, MPD
//	.../v{n}/aac_{kbps}.mp4, aac_{kbps}.m3u8, ogg_{kbps}.ogg renditions
//
// Versions are immutable: a re-upload publishes v{n+1}. The artist, album
// and song folders are the purge units: an edge keeps a generation for each
// (PurgeFolder, PurgeFolders), a version folder carries none.

// Root is the folder of every published object: the only prefix the origin
// serves and the edge accepts, and the purge prefix for everything.
const Root = "artists/"

// rootName is Root without its slash.
const rootName = "artists"

// OriginalsRoot is the folder of uploaded masters, which are never served.
const OriginalsRoot = "originals/"

// ArtistFolder returns "artists/{artistID}/".
func ArtistFolder(artistID int64) string {
	return string(appendArtist(make([]byte, 0, 32), artistID))
}

// AlbumFolder returns "artists/{artistID}/albums/{albumID}/".
func AlbumFolder(artistID, albumID int64) string {
	return string(appendAlbum(make([]byte, 0, 48), artistID, albumID))
}

// SongFolder returns "artists/{artistID}/albums/{albumID}/songs/{songID}/",
// the folder of every version of a song: what a takedown or a new version
// purges. artistID is the album's artist.
func SongFolder(artistID, albumID, songID int64) string {
	return string(appendSong(make([]byte, 0, 64), artistID, albumID, songID))
}

// VersionFolder returns the folder of one published version of a song,
// "artists/{artistID}/albums/{albumID}/songs/{songID}/v{version}/": the
// packager publishes into it and a playback token opens it.
func VersionFolder(artistID, albumID, songID int64, version int) string {
	b := appendSong(make([]byte, 0, 72), artistID, albumID, songID)
	b = append(b, 'v')
	b = strconv.AppendInt(b, int64(version), 10)
	return string(append(b, '/'))
}

func appendArtist(b []byte, artistID int64) []byte {
	b = append(b, Root...)
	b = strconv.AppendInt(b, artistID, 10)
	return append(b, '/')
}

func appendAlbum(b []byte, artistID, albumID int64) []byte {
	b = append(appendArtist(b, artistID), "albums/"...)
	b = strconv.AppendInt(b, albumID, 10)
	return append(b, '/')
}

func appendSong(b []byte, artistID, albumID, songID int64) []byte {
	b = append(appendAlbum(b, artistID, albumID), "songs/"...)
	b = strconv.AppendInt(b, songID, 10)
	return append(b, '/')
}

// Original returns the key of an uploaded master,
// "originals/{songID}/{uploadID}.{ext}"; ext has no dot.
func Original(songID, uploadID int64, ext string) string {
	return OriginalsRoot + strconv.FormatInt(songID, 10) + "/" + strconv.FormatInt(uploadID, 10) + "." + ext
}

// Formats of a rendition.
const (
	FormatAAC = "aac" // AAC-LC in single-file CMAF (.mp4), with an HLS media playlist (.m3u8)
	FormatOgg = "ogg" // Ogg Vorbis (.ogg), for progressive play
)

// File names in a version folder that name no rendition.
const (
	MasterName   = "master.m3u8"  // HLS multivariant playlist
	ManifestName = "manifest.mpd" // DASH MPD
)

// File name extensions.
const (
	extCMAF     = ".mp4"
	extOgg      = ".ogg"
	extPlaylist = ".m3u8"
	extMPD      = ".mpd"
)

// A Rendition is one rung of the bitrate ladder in one format.
type Rendition struct {
	Format string // FormatAAC or FormatOgg
	Kbps   int    // nominal bitrate
}

// Name returns "{format}_{kbps}", e.g. "aac_128": the stem of the
// rendition's file names and its DASH Representation id.
func (r Rendition) Name() string {
	return r.Format + "_" + strconv.Itoa(r.Kbps)
}

// Media returns the file name of the rendition's media: "aac_128.mp4" or
// "ogg_128.ogg".
func (r Rendition) Media() string {
	if r.Format == FormatOgg {
		return r.Name() + extOgg
	}
	return r.Name() + extCMAF
}

// Playlist returns the file name of the rendition's HLS media playlist,
// "aac_128.m3u8" (only AAC renditions have one).
func (r Rendition) Playlist() string {
	return r.Name() + extPlaylist
}

// Kind is what an object is, judged by its file name (KindOf).
type Kind uint8

const (
	KindMedia    Kind = iota // anything that is not a playlist: served in byte ranges
	KindPlaylist             // an HLS media playlist, *.m3u8
	KindMaster               // master.m3u8, the multivariant playlist
	KindMPD                  // a DASH MPD, *.mpd
)

// KindOf classifies a key or a file name by its last segment: playlists
// and MPDs by their extension, master.m3u8 by name, everything else is
// media. It does not allocate.
func KindOf[S ~string | ~[]byte](key S) Kind {
	name := key[lastSlash(key)+1:]
	switch {
	case hasSuffix(name, extPlaylist):
		if string(name) == MasterName {
			return KindMaster
		}
		return KindPlaylist
	case hasSuffix(name, extMPD):
		return KindMPD
	}
	return KindMedia
}

// maxRungDigits bounds the digits RungOf reads.
const maxRungDigits = 6

// RungOf returns the nominal bitrate in kbps that a rendition file name
// such as aac_320.mp4, aac_128.m3u8 or ogg_64.ogg carries: the digits
// after the last "_" and before the extension (the last "."), at most six
// of them. It returns 0 when the name carries none. For a key it reads the
// last segment. It does not allocate.
func RungOf[S ~string | ~[]byte](key S) int {
	name := key[lastSlash(key)+1:]
	dot := len(name)
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			dot = i
			break
		}
	}
	us := -1
	for i := dot - 1; i >= 0; i-- {
		if name[i] == '_' {
			us = i
			break
		}
	}
	if us < 0 || dot-us-1 == 0 || dot-us-1 > maxRungDigits {
		return 0
	}
	n := 0
	for i := us + 1; i < dot; i++ {
		c := name[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Purge folders are the artist, album and song folders, at these depths
// (segments, counting "artists").
const (
	artistDepth = 2
	albumDepth  = 4
	songDepth   = 6
)

// PurgeFolders returns the lengths of the artist, album and song folder
// prefixes of key, each with its trailing slash, in that order; a length
// is 0 where key does not reach that folder. key[:n] is then the folder,
// a key for a generation table. It judges only the slashes, not the
// segments (callers validate keys), and does not allocate.
func PurgeFolders[S ~string | ~[]byte](key S) [3]int {
	var ends [3]int
	depth, level := 0, 0
	for i := 0; i < len(key) && level < len(ends); i++ {
		if key[i] != '/' {
			continue
		}
		depth++
		if depth == 2*(level+1) {
			ends[level] = i + 1
			level++
		}
	}
	return ends
}

// IsPurgeFolder reports whether prefix has the shape of a folder that
// carries a purge generation: non-empty segments, a trailing "/", at the
// depth of an artist, album or song folder. It does not otherwise judge
// the segments.
func IsPurgeFolder(prefix string) bool {
	if len(prefix) < 2 || prefix[0] == '/' || prefix[len(prefix)-1] != '/' {
		return false
	}
	depth := 0
	for i := 0; i < len(prefix); i++ {
		if prefix[i] != '/' {
			continue
		}
		if i > 0 && prefix[i-1] == '/' {
			return false
		}
		depth++
	}
	switch depth {
	case artistDepth, albumDepth, songDepth:
		return true
	}
	return false
}

// PurgeFolder returns the canonical form of a purge prefix: Root for
// everything (also for "" and "artists"), or an artist, album or song
// folder under Root with a trailing slash (which the input may leave
// off). It reports false for anything else, including keys that Validate
// refuses.
func PurgeFolder(p string) (string, bool) {
	if p == "" || p == rootName || p == Root {
		return Root, true
	}
	t := p
	if t[len(t)-1] == '/' {
		t = t[:len(t)-1]
	}
	if len(t) <= len(Root) || t[:len(Root)] != Root || keyProblem(t) != "" {
		return "", false
	}
	if t += "/"; !IsPurgeFolder(t) {
		return "", false
	}
	return t, true
}

// hasSuffix is strings.HasSuffix for either a string or a byte slice.
func hasSuffix[S ~string | ~[]byte](s S, suffix string) bool {
	return len(s) >= len(suffix) && string(s[len(s)-len(suffix):]) == suffix
}

// lastSlash returns the index of the last '/' in s, or -1.
func lastSlash[S ~string | ~[]byte](s S) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}
