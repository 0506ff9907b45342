package subsonic

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
)

// Protocol constants of the envelope.
const (
	APIVersion = "1.16.1"
	ServerType = "riff"
	xmlns      = "http://subsonic.org/restapi"
)

// Error codes of the Subsonic API.
const (
	CodeGeneric          = 0  // a generic error
	CodeMissingParameter = 10 // required parameter is missing
	CodeWrongCredentials = 40 // wrong username or password
	CodeTokenUnsupported = 41 // token authentication not supported (unused: Riff supports it)
	CodeAuthUnsupported  = 42 // provided authentication mechanism not supported
	CodeAuthConflict     = 43 // multiple conflicting authentication mechanisms provided
	CodeInvalidAPIKey    = 44 // invalid API key
	CodeNotAuthorized    = 50 // user is not authorized for the given operation
	CodeNotFound         = 70 // the requested data was not found
)

// Error is a Subsonic error answer: its code and a message for people.
type Error struct {
	Code    int    `xml:"code,attr" json:"code"`
	Message string `xml:"message,attr,omitempty" json:"message,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("subsonic error %d: %s", e.Code, e.Message) }

// Fail returns an *Error.
func Fail(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// response is the subsonic-response envelope. Exactly one payload field
// is set on success (none for ping and the like), Error on failure. The
// same struct is written as JSON and as XML: scalars are attributes in
// XML, lists repeated elements.
type response struct {
	XMLName       xml.Name `xml:"subsonic-response" json:"-"`
	XMLNS         string   `xml:"xmlns,attr" json:"-"`
	Status        string   `xml:"status,attr" json:"status"`
	Version       string   `xml:"version,attr" json:"version"`
	Type          string   `xml:"type,attr" json:"type"`
	ServerVersion string   `xml:"serverVersion,attr" json:"serverVersion"`
	OpenSubsonic  bool     `xml:"openSubsonic,attr" json:"openSubsonic"`
	Error         *Error   `xml:"error,omitempty" json:"error,omitempty"`

	License      *license      `xml:"license,omitempty" json:"license,omitempty"`
	Extensions   []extension   `xml:"openSubsonicExtensions,omitempty" json:"openSubsonicExtensions,omitempty"`
	MusicFolders *musicFolders `xml:"musicFolders,omitempty" json:"musicFolders,omitempty"`
	Indexes      *indexes      `xml:"indexes,omitempty" json:"indexes,omitempty"`
	Artists      *artistsID3   `xml:"artists,omitempty" json:"artists,omitempty"`
	Artist       *artistID3    `xml:"artist,omitempty" json:"artist,omitempty"`
	Album        *albumID3     `xml:"album,omitempty" json:"album,omitempty"`
	Song         *child        `xml:"song,omitempty" json:"song,omitempty"`
	Genres       *genres       `xml:"genres,omitempty" json:"genres,omitempty"`
	AlbumList2   *albumList    `xml:"albumList2,omitempty" json:"albumList2,omitempty"`
	RandomSongs  *songs        `xml:"randomSongs,omitempty" json:"randomSongs,omitempty"`
	SongsByGenre *songs        `xml:"songsByGenre,omitempty" json:"songsByGenre,omitempty"`
	TopSongs     *songs        `xml:"topSongs,omitempty" json:"topSongs,omitempty"`
	Search3      *searchResult `xml:"searchResult3,omitempty" json:"searchResult3,omitempty"`
	Playlists    *playlists    `xml:"playlists,omitempty" json:"playlists,omitempty"`
	Playlist     *playlist     `xml:"playlist,omitempty" json:"playlist,omitempty"`
	Starred2     *searchResult `xml:"starred2,omitempty" json:"starred2,omitempty"`
}

type license struct {
	Valid bool `xml:"valid,attr" json:"valid"`
}

type extension struct {
	Name     string `xml:"name,attr" json:"name"`
	Versions []int  `xml:"versions" json:"versions"`
}

type musicFolders struct {
	Folders []musicFolder `xml:"musicFolder" json:"musicFolder"`
}

type musicFolder struct {
	ID   int    `xml:"id,attr" json:"id"`
	Name string `xml:"name,attr" json:"name"`
}

type indexes struct {
	IgnoredArticles string               `xml:"ignoredArticles,attr" json:"ignoredArticles"`
	LastModified    int64                `xml:"lastModified,attr" json:"lastModified"`
	Index           []index[indexArtist] `xml:"index,omitempty" json:"index,omitempty"`
}

// index is the artists filed under one index letter: indexArtist in
// getIndexes, artistID3 in getArtists.
type index[A any] struct {
	Name    string `xml:"name,attr" json:"name"`
	Artists []A    `xml:"artist" json:"artist"`
}

type indexArtist struct {
	ID      string `xml:"id,attr" json:"id"`
	Name    string `xml:"name,attr" json:"name"`
	Starred string `xml:"starred,attr,omitempty" json:"starred,omitempty"`
}

type artistsID3 struct {
	IgnoredArticles string             `xml:"ignoredArticles,attr" json:"ignoredArticles"`
	Index           []index[artistID3] `xml:"index,omitempty" json:"index,omitempty"`
}

// artistID3 is an artist; Albums is set by getArtist only.
type artistID3 struct {
	ID             string     `xml:"id,attr" json:"id"`
	Name           string     `xml:"name,attr" json:"name"`
	ArtistImageURL string     `xml:"artistImageUrl,attr,omitempty" json:"artistImageUrl,omitempty"`
	AlbumCount     *int       `xml:"albumCount,attr,omitempty" json:"albumCount,omitempty"`
	Starred        string     `xml:"starred,attr,omitempty" json:"starred,omitempty"`
	Albums         []albumID3 `xml:"album,omitempty" json:"album,omitempty"`
}

// albumID3 is an album; Songs is set by getAlbum only.
type albumID3 struct {
	ID        string  `xml:"id,attr" json:"id"`
	Name      string  `xml:"name,attr" json:"name"`
	Artist    string  `xml:"artist,attr,omitempty" json:"artist,omitempty"`
	ArtistID  string  `xml:"artistId,attr,omitempty" json:"artistId,omitempty"`
	CoverArt  string  `xml:"coverArt,attr,omitempty" json:"coverArt,omitempty"`
	SongCount int     `xml:"songCount,attr" json:"songCount"`
	Duration  int64   `xml:"duration,attr" json:"duration"`
	Created   string  `xml:"created,attr" json:"created"`
	Year      int     `xml:"year,attr,omitempty" json:"year,omitempty"`
	Genre     string  `xml:"genre,attr,omitempty" json:"genre,omitempty"`
	Songs     []child `xml:"song,omitempty" json:"song,omitempty"`
}

// artistRef is an artist credited on a song (OpenSubsonic "artists").
type artistRef struct {
	ID   string `xml:"id,attr" json:"id"`
	Name string `xml:"name,attr" json:"name"`
}

// child is a song.
type child struct {
	ID          string      `xml:"id,attr" json:"id"`
	Parent      string      `xml:"parent,attr,omitempty" json:"parent,omitempty"`
	IsDir       bool        `xml:"isDir,attr" json:"isDir"`
	Title       string      `xml:"title,attr" json:"title"`
	Album       string      `xml:"album,attr,omitempty" json:"album,omitempty"`
	Artist      string      `xml:"artist,attr,omitempty" json:"artist,omitempty"`
	Track       int         `xml:"track,attr,omitempty" json:"track,omitempty"`
	Genre       string      `xml:"genre,attr,omitempty" json:"genre,omitempty"`
	CoverArt    string      `xml:"coverArt,attr,omitempty" json:"coverArt,omitempty"`
	ContentType string      `xml:"contentType,attr,omitempty" json:"contentType,omitempty"`
	Suffix      string      `xml:"suffix,attr,omitempty" json:"suffix,omitempty"`
	Duration    int64       `xml:"duration,attr" json:"duration"`
	BitRate     int         `xml:"bitRate,attr,omitempty" json:"bitRate,omitempty"`
	IsVideo     bool        `xml:"isVideo,attr" json:"isVideo"`
	Created     string      `xml:"created,attr,omitempty" json:"created,omitempty"`
	Starred     string      `xml:"starred,attr,omitempty" json:"starred,omitempty"`
	AlbumID     string      `xml:"albumId,attr,omitempty" json:"albumId,omitempty"`
	ArtistID    string      `xml:"artistId,attr,omitempty" json:"artistId,omitempty"`
	Type        string      `xml:"type,attr,omitempty" json:"type,omitempty"`
	MediaType   string      `xml:"mediaType,attr,omitempty" json:"mediaType,omitempty"`
	Artists     []artistRef `xml:"artists,omitempty" json:"artists,omitempty"`
}

type genres struct {
	Genres []genre `xml:"genre" json:"genre"`
}

// genre's name is the element's text in XML.
type genre struct {
	Value      string `xml:",chardata" json:"value"`
	SongCount  int    `xml:"songCount,attr" json:"songCount"`
	AlbumCount int    `xml:"albumCount,attr" json:"albumCount"`
}

type albumList struct {
	Albums []albumID3 `xml:"album" json:"album"`
}

type songs struct {
	Songs []child `xml:"song" json:"song"`
}

// searchResult is searchResult3 and starred2.
type searchResult struct {
	Artists []artistID3 `xml:"artist" json:"artist"`
	Albums  []albumID3  `xml:"album" json:"album"`
	Songs   []child     `xml:"song" json:"song"`
}

type playlists struct {
	Playlists []playlist `xml:"playlist" json:"playlist"`
}

// playlist is a playlist; Entries is set by getPlaylist and friends.
type playlist struct {
	ID        string  `xml:"id,attr" json:"id"`
	Name      string  `xml:"name,attr" json:"name"`
	Comment   string  `xml:"comment,attr,omitempty" json:"comment,omitempty"`
	Owner     string  `xml:"owner,attr,omitempty" json:"owner,omitempty"`
	Public    bool    `xml:"public,attr" json:"public"`
	SongCount int     `xml:"songCount,attr" json:"songCount"`
	Duration  int64   `xml:"duration,attr" json:"duration"`
	Created   string  `xml:"created,attr" json:"created"`
	Changed   string  `xml:"changed,attr" json:"changed"`
	Readonly  bool    `xml:"readonly,attr" json:"readonly"`
	Entries   []child `xml:"entry,omitempty" json:"entry,omitempty"`
}

// write sends resp, filled in with the envelope's fields, as JSON when
// format is "json" and as XML otherwise, with HTTP status (Subsonic
// answers errors with 200: the status is in the envelope; Riff uses 404
// for an unknown method and 429 for a spent login limit).
func (h *Handler) write(w http.ResponseWriter, format string, status int, resp *response) {
	resp.XMLNS, resp.Version, resp.Type, resp.ServerVersion, resp.OpenSubsonic = xmlns, APIVersion, ServerType, h.cfg.ServerVersion, true
	resp.Status = "ok"
	if resp.Error != nil {
		resp.Status = "failed"
	}
	w.Header().Set("Cache-Control", "no-store")
	if format == "json" {
		b, err := json.Marshal(struct {
			R *response `json:"subsonic-response"`
		}{resp})
		if err != nil {
			h.log.Error("subsonic: encode", "err", err)
			http.Error(w, "encoding failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(append(b, '\n'))
		return
	}
	b, err := xml.Marshal(resp)
	if err != nil {
		h.log.Error("subsonic: encode", "err", err)
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
	w.Write([]byte("\n"))
}
