package subsonic

import (
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"riff/catalogd/store"
)

// Ids are Riff's: songs, albums, artists and playlists each have their
// own, and the endpoint or parameter says which is meant. Cover art ids
// are "al-{album id}".

func sid(id int64) string { return strconv.FormatInt(id, 10) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func coverArtID(albumID int64, hash, link string) string {
	if hash == "" && link == "" {
		return ""
	}
	return "al-" + sid(albumID)
}

// year is the year of a YYYY-MM-DD release date (0: none).
func year(date string) int {
	if len(date) < 4 {
		return 0
	}
	y, _ := strconv.Atoi(date[:4])
	return y
}

// newChild describes a song. Songs stream as Ogg Vorbis by default (see
// stream), so that is the content type given.
func newChild(so store.Song) child {
	c := child{
		ID: sid(so.ID), Parent: sid(so.AlbumID), Title: so.Title, Album: so.AlbumTitle, Track: so.TrackNumber,
		Genre: so.Genre, CoverArt: coverArtID(so.AlbumID, so.AlbumCoverHash, so.AlbumCoverURL), ContentType: "audio/ogg", Suffix: "ogg",
		Duration: (so.DurationMS + 500) / 1000, Created: stamp(so.CreatedAt), AlbumID: sid(so.AlbumID),
		Type: "music", MediaType: "song",
	}
	for i, cr := range so.Credits {
		if i == 0 {
			c.Artist, c.ArtistID = cr.Name, sid(cr.ArtistID)
		}
		if cr.Role == store.RolePrimary || cr.Role == store.RoleFeatured {
			c.Artists = append(c.Artists, artistRef{ID: sid(cr.ArtistID), Name: cr.Name})
		}
	}
	return c
}

func newChildren(songs []store.Song) []child {
	out := make([]child, 0, len(songs))
	for _, so := range songs {
		out = append(out, newChild(so))
	}
	return out
}

func newAlbum(a store.AlbumSummary) albumID3 {
	return albumID3{ID: sid(a.ID), Name: a.Title, Artist: a.ArtistName, ArtistID: sid(a.ArtistID),
		CoverArt: coverArtID(a.ID, a.CoverHash, a.CoverURL), SongCount: a.SongCount, Duration: (a.DurationMS + 500) / 1000,
		Created: stamp(a.CreatedAt), Year: year(a.ReleaseDate), Genre: a.Genre}
}

func newAlbums(as []store.AlbumSummary) []albumID3 {
	out := make([]albumID3, 0, len(as))
	for _, a := range as {
		out = append(out, newAlbum(a))
	}
	return out
}

func newArtist(a store.Artist, albums *int) artistID3 {
	return artistID3{ID: sid(a.ID), Name: a.Name, ArtistImageURL: a.ImageURL, AlbumCount: albums}
}

func newPlaylist(p store.PlaylistDetail, durationMS int64) playlist {
	return playlist{ID: sid(p.ID), Name: p.Name, Comment: p.Description, Owner: p.OwnerName, Public: p.IsPublic,
		SongCount: p.ItemCount, Duration: (durationMS + 500) / 1000, Created: stamp(p.CreatedAt), Changed: stamp(p.UpdatedAt)}
}

// indexName is the index letter an artist is filed under: the upper-cased
// first letter of its name, "#" for anything else.
func indexName(name string) string {
	r, _ := utf8.DecodeRuneInString(name)
	if !unicode.IsLetter(r) {
		return "#"
	}
	return string(unicode.ToUpper(r))
}
