package catalogd

import (
	"encoding/json"
	"strconv"
	"time"

	"riff/catalogd/store"
	"riff/internal/blobkey"
)

// The JSON shapes the API answers with. Private fields (email, password
// hash, preferences, tier, role) appear only in userView, which is only
// ever sent to the user it describes.

// userView is the caller's own account.
type userView struct {
	ID          int64           `json:"id"`
	Email       string          `json:"email"`
	DisplayName string          `json:"display_name"`
	AvatarURL   string          `json:"avatar_url"`
	Country     string          `json:"country"`
	Tier        string          `json:"tier"`
	Role        string          `json:"role"`
	Preferences json.RawMessage `json:"preferences"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

func privateUser(u store.User) userView {
	prefs := json.RawMessage(u.Preferences)
	if !json.Valid(prefs) {
		prefs = json.RawMessage("{}")
	}
	return userView{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, AvatarURL: u.AvatarURL, Country: u.Country,
		Tier: u.Tier, Role: u.Role, Preferences: prefs, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// publicUserView is what anyone may see of a user.
type publicUserView struct {
	ID          int64     `json:"id"`
	DisplayName string    `json:"display_name"`
	AvatarURL   string    `json:"avatar_url"`
	CreatedAt   time.Time `json:"created_at"`
}

func publicUser(u store.User) publicUserView {
	return publicUserView{ID: u.ID, DisplayName: u.DisplayName, AvatarURL: u.AvatarURL, CreatedAt: u.CreatedAt}
}

type artistView struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Bio       string    `json:"bio"`
	ImageURL  string    `json:"image_url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Followers and PlayCount (counted plays of its songs) are shown where
	// the artist is the subject (GET /artists/{id}, the follow list).
	Followers *int64 `json:"followers,omitempty"`
	PlayCount *int64 `json:"play_count,omitempty"`
}

func newArtistView(a store.Artist) artistView {
	return artistView{ID: a.ID, Name: a.Name, Bio: a.Bio, ImageURL: a.ImageURL, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
}

type artistRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type albumView struct {
	ID          int64             `json:"id"`
	Title       string            `json:"title"`
	Type        string            `json:"type"`
	ReleaseDate string            `json:"release_date"`
	CoverURL    string            `json:"cover_url"`
	CoverSizes  map[string]string `json:"cover_sizes,omitempty"`
	Artist      artistRef         `json:"artist"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Songs       *[]songView       `json:"songs,omitempty"`
}

func (s *Server) viewAlbum(al store.Album) albumView {
	url, sizes := s.coverURLs(al.ArtistID, al.ID, al.CoverHash, al.CoverURL)
	return albumView{ID: al.ID, Title: al.Title, Type: al.Type, ReleaseDate: al.ReleaseDate, CoverURL: url, CoverSizes: sizes,
		Artist: artistRef{al.ArtistID, al.ArtistName}, CreatedAt: al.CreatedAt, UpdatedAt: al.UpdatedAt}
}

type albumRef struct {
	ID         int64             `json:"id"`
	Title      string            `json:"title"`
	CoverURL   string            `json:"cover_url"`
	CoverSizes map[string]string `json:"cover_sizes,omitempty"`
}

// coverDefaultSize is the size cover_url names when the album has a cover
// of its own; cover_sizes names each size.
const coverDefaultSize = 300

// coverURLs returns an album's cover_url and cover_sizes: the edge URLs of
// its cover's images (blobkey.CoverPath) when it has a cover (hash), else
// the link its artist gave (link, maybe "") and no sizes.
func (s *Server) coverURLs(artistID, albumID int64, hash, link string) (string, map[string]string) {
	if hash == "" {
		return link, nil
	}
	sizes := make(map[string]string, len(blobkey.CoverSizes))
	for _, n := range blobkey.CoverSizes {
		sizes[strconv.Itoa(n)] = s.cfg.EdgeURL + blobkey.CoverPath(artistID, albumID, hash, n)
	}
	return sizes[strconv.Itoa(coverDefaultSize)], sizes
}

type creditView struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// songView is a song's metadata; the playback fields are filled only for
// a logged-in caller on a ready song (GET /songs/{id}).
type songView struct {
	ID          int64        `json:"id"`
	Title       string       `json:"title"`
	Album       albumRef     `json:"album"`
	Artists     []creditView `json:"artists"`
	TrackNumber int          `json:"track_number"`
	DurationMS  int64        `json:"duration_ms"`
	Genre       string       `json:"genre"`
	Explicit    bool         `json:"explicit"`
	Status      string       `json:"status"`

	// Processing is the newest packaging job, shown to the song's owner
	// while a version is on its way (or failed).
	Processing *jobView `json:"processing,omitempty"`

	HLSURL    string     `json:"hls_url,omitempty"`
	DASHURL   string     `json:"dash_url,omitempty"`
	StreamURL string     `json:"stream_url,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// FallbackURLs are the same URLs on the next region that holds the
	// song, for players to retry on a playback failure (several regions
	// only; regions.go).
	FallbackURLs *playbackURLs `json:"fallback_urls,omitempty"`

	// Liked says whether the logged-in caller likes the song (absent for
	// anonymous callers and on public, cached lists).
	Liked *bool `json:"liked,omitempty"`
}

func (s *Server) viewSong(so store.Song) songView {
	credits := make([]creditView, len(so.Credits))
	for i, c := range so.Credits {
		credits[i] = creditView{c.ArtistID, c.Name, c.Role}
	}
	url, sizes := s.coverURLs(so.AlbumArtistID, so.AlbumID, so.AlbumCoverHash, so.AlbumCoverURL)
	return songView{ID: so.ID, Title: so.Title, Album: albumRef{so.AlbumID, so.AlbumTitle, url, sizes},
		Artists: credits, TrackNumber: so.TrackNumber, DurationMS: so.DurationMS, Genre: so.Genre,
		Explicit: so.Explicit, Status: so.Status}
}

// jobView is the state of a packaging job: its stage and percent while it
// runs, and why it failed.
type jobView struct {
	Version     int    `json:"version"`
	State       string `json:"state"`
	Stage       string `json:"stage,omitempty"`
	Percent     int    `json:"percent"`
	Attempts    int    `json:"attempts"`
	MaxAttempts int    `json:"max_attempts,omitempty"`
	Error       string `json:"error,omitempty"`
}

func newJobView(j store.Job) *jobView {
	return &jobView{Version: j.Version, State: j.State, Stage: j.Stage, Percent: j.Percent, Attempts: j.Attempts,
		MaxAttempts: j.MaxAttempts, Error: j.LastError}
}

func (s *Server) viewSongs(songs []store.Song) []songView {
	out := make([]songView, len(songs))
	for i, so := range songs {
		out[i] = s.viewSong(so)
	}
	return out
}

type playlistView struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Owner       publicUserRefView `json:"owner"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

type publicUserRefView struct {
	ID          int64  `json:"id"`
	DisplayName string `json:"display_name"`
}

func newPlaylistView(p store.Playlist) playlistView {
	return playlistView{ID: p.ID, Name: p.Name, Description: p.Description,
		Owner: publicUserRefView{p.OwnerUserID, p.OwnerName}, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}
