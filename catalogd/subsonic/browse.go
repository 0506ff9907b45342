package subsonic

import (
	"errors"
	"slices"

	"riff/catalogd/store"
)

// endpoints is every method served, by name.
func (h *Handler) endpoints() map[string]method {
	return map[string]method{
		"ping":                      {serve: func(*call, *response) error { return nil }},
		"getLicense":                {serve: h.getLicense},
		"getOpenSubsonicExtensions": {public: true, serve: h.getExtensions},

		"getMusicFolders": {serve: h.getMusicFolders},
		"getIndexes":      {serve: h.getIndexes},
		"getArtists":      {serve: h.getArtists},
		"getArtist":       {byID: h.getArtist},
		"getAlbum":        {byID: h.getAlbum},
		"getSong":         {byID: h.getSong},
		"getGenres":       {serve: h.getGenres},
		"getAlbumList2":   {serve: h.getAlbumList2},
		"getRandomSongs":  {serve: h.getRandomSongs},
		"getSongsByGenre": {serve: h.getSongsByGenre},
		"getTopSongs":     {serve: h.getTopSongs},
		"search3":         {serve: h.search3},

		"getPlaylists":   {serve: h.getPlaylists},
		"getPlaylist":    {byID: h.playlistWithEntries},
		"createPlaylist": {serve: h.createPlaylist},
		"updatePlaylist": {serve: h.updatePlaylist},
		"deletePlaylist": {byID: h.deletePlaylist},

		"star":        {serve: h.star},
		"unstar":      {serve: h.unstar},
		"getStarred2": {serve: h.getStarred2},
		"scrobble":    {serve: h.scrobble},

		"stream":      {serve: h.stream},
		"hls.m3u8":    {serve: h.hls},
		"getCoverArt": {serve: h.getCoverArt},
		"download":    {serve: h.download},
	}
}

func (h *Handler) getLicense(_ *call, resp *response) error {
	resp.License = &license{Valid: true}
	return nil
}

func (h *Handler) getExtensions(_ *call, resp *response) error {
	resp.Extensions = []extension{
		{Name: "apiKeyAuthentication", Versions: []int{1}},
		{Name: "formPost", Versions: []int{1}},
	}
	return nil
}

// musicFolderID is Riff's one music folder: the catalog.
const musicFolderID = 1

func (h *Handler) getMusicFolders(_ *call, resp *response) error {
	resp.MusicFolders = &musicFolders{Folders: []musicFolder{{ID: musicFolderID, Name: "Riff"}}}
	return nil
}

// checkFolder refuses a musicFolderId other than Riff's one.
func (c *call) checkFolder() error {
	if v := c.r.Form.Get("musicFolderId"); v != "" && v != sid(musicFolderID) {
		return Fail(CodeNotFound, "No such music folder: %q.", v)
	}
	return nil
}

// getIndexes lists the artists by index letter (the folder-based view;
// Riff's folders are its artists).
func (h *Handler) getIndexes(c *call, resp *response) error {
	as, err := h.browseArtists(c)
	if err != nil {
		return err
	}
	resp.Indexes = &indexes{
		LastModified: h.now().UnixMilli(),
		Index: fileByIndex(as, func(a store.ArtistSummary) indexArtist {
			return indexArtist{ID: sid(a.ID), Name: a.Name}
		}),
	}
	return nil
}

// getArtists lists the artists with an album, by index letter.
func (h *Handler) getArtists(c *call, resp *response) error {
	as, err := h.browseArtists(c)
	if err != nil {
		return err
	}
	resp.Artists = &artistsID3{Index: fileByIndex(as, func(a store.ArtistSummary) artistID3 {
		return newArtist(a.Artist, &a.AlbumCount)
	})}
	return nil
}

// browseArtists checks the musicFolderId and lists the artists with an
// album, by name.
func (h *Handler) browseArtists(c *call) ([]store.ArtistSummary, error) {
	if err := c.checkFolder(); err != nil {
		return nil, err
	}
	return h.store.BrowseArtists(c.ctx)
}

// fileByIndex files artists, in name order, under their index letters.
func fileByIndex[A any](as []store.ArtistSummary, view func(store.ArtistSummary) A) []index[A] {
	var out []index[A]
	for _, a := range as {
		name := indexName(a.Name)
		if n := len(out); n == 0 || out[n-1].Name != name {
			out = append(out, index[A]{Name: name})
		}
		last := &out[len(out)-1]
		last.Artists = append(last.Artists, view(a))
	}
	return out
}

func (h *Handler) getArtist(c *call, resp *response, id int64) error {
	a, err := h.store.ArtistByID(c.ctx, id)
	if err != nil {
		return notFound(err, "artist")
	}
	albums, err := h.store.BrowseAlbums(c.ctx, store.AlbumQuery{ArtistID: id, Order: store.AlbumsByYear})
	if err != nil {
		return err
	}
	n := len(albums)
	v := newArtist(a, &n)
	v.Albums = newAlbums(albums)
	resp.Artist = &v
	return nil
}

func (h *Handler) getAlbum(c *call, resp *response, id int64) error {
	albums, err := h.store.BrowseAlbums(c.ctx, store.AlbumQuery{IDs: []int64{id}, Order: store.AlbumsByIDs})
	if err != nil {
		return err
	}
	if len(albums) == 0 {
		return Fail(CodeNotFound, "No such album.")
	}
	songs, err := h.store.AlbumSongs(c.ctx, id, true)
	if err != nil {
		return err
	}
	v := newAlbum(albums[0])
	v.Songs = newChildren(songs)
	resp.Album = &v
	return nil
}

func (h *Handler) getSong(c *call, resp *response, id int64) error {
	so, err := h.catalog.VisibleSong(c.ctx, c.user, id)
	if err != nil {
		return notFound(err, "song")
	}
	v := newChild(so)
	resp.Song = &v
	return nil
}

func (h *Handler) getGenres(c *call, resp *response) error {
	gs, err := h.store.Genres(c.ctx)
	if err != nil {
		return err
	}
	out := &genres{Genres: []genre{}}
	for _, g := range gs {
		out.Genres = append(out.Genres, genre{Value: g.Name, SongCount: g.SongCount, AlbumCount: g.AlbumCount})
	}
	resp.Genres = out
	return nil
}

// maxListSize caps size and count parameters (the spec's 500).
const maxListSize = 500

// maxListOffset caps the offsets of lists.
const maxListOffset = 100_000

// page checks the musicFolderId and returns a list's page: its size
// (parameter sizeName, default 10) and offset.
func (c *call) page(sizeName string) (size, offset int, err error) {
	if err := c.checkFolder(); err != nil {
		return 0, 0, err
	}
	if size, err = c.intParam(sizeName, 10, 1, maxListSize); err != nil {
		return 0, 0, err
	}
	if offset, err = c.intParam("offset", 0, 0, maxListOffset); err != nil {
		return 0, 0, err
	}
	return size, offset, nil
}

// getAlbumList2 lists albums by type: random, newest, frequent (and
// highest: Riff has no ratings, so the most played), recent (the caller's
// recent plays), alphabeticalByName, alphabeticalByArtist, byYear,
// byGenre, starred (Riff likes songs, not albums: always empty).
func (h *Handler) getAlbumList2(c *call, resp *response) error {
	typ, err := c.param("type", true)
	if err != nil {
		return err
	}
	size, offset, err := c.page("size")
	if err != nil {
		return err
	}
	q := store.AlbumQuery{Limit: size, Offset: offset}
	switch typ {
	case "random":
		q.Order, q.Offset = store.AlbumsRandom, 0
	case "newest":
		q.Order = store.AlbumsNewest
	case "frequent", "highest":
		q.Order = store.AlbumsPopular
	case "alphabeticalByName":
		q.Order = store.AlbumsByName
	case "alphabeticalByArtist":
		q.Order = store.AlbumsByArtistName
	case "byYear":
		from, to, err := c.years()
		if err != nil {
			return err
		}
		if c.r.Form.Get("fromYear") == "" || c.r.Form.Get("toYear") == "" {
			return Fail(CodeMissingParameter, "Required parameter is missing: fromYear and toYear.")
		}
		q.Order, q.FromYear, q.ToYear = store.AlbumsByYear, from, to
	case "byGenre":
		if q.Genre, err = c.param("genre", true); err != nil {
			return err
		}
		q.Order = store.AlbumsPopular
	case "recent":
		ids, err := h.recentAlbums(c)
		if err != nil {
			return err
		}
		ids = ids[min(offset, len(ids)):]
		ids = ids[:min(size, len(ids))]
		q = store.AlbumQuery{IDs: ids, Order: store.AlbumsByIDs}
	case "starred":
		resp.AlbumList2 = &albumList{Albums: []albumID3{}}
		return nil
	default:
		return Fail(CodeGeneric, "Unknown list type %q.", typ)
	}
	albums, err := h.store.BrowseAlbums(c.ctx, q)
	if err != nil {
		return err
	}
	resp.AlbumList2 = &albumList{Albums: newAlbums(albums)}
	return nil
}

// recentAlbums returns the albums of the caller's recent counted plays,
// most recent first.
func (h *Handler) recentAlbums(c *call) ([]int64, error) {
	plays, _, err := h.store.RecentlyPlayed(c.ctx, c.user.ID, store.MaxRecentPlays, 0)
	if err != nil {
		return nil, err
	}
	ids := []int64{}
	for _, p := range plays {
		if !slices.Contains(ids, p.Song.AlbumID) {
			ids = append(ids, p.Song.AlbumID)
		}
	}
	return ids, nil
}

func (h *Handler) getRandomSongs(c *call, resp *response) error {
	if err := c.checkFolder(); err != nil {
		return err
	}
	size, err := c.intParam("size", 10, 1, maxListSize)
	if err != nil {
		return err
	}
	from, to, err := c.years()
	if err != nil {
		return err
	}
	q := store.SongQuery{Genre: c.r.Form.Get("genre"), Random: true, Limit: size}
	if c.r.Form.Get("fromYear") != "" || c.r.Form.Get("toYear") != "" {
		q.FromYear, q.ToYear = from, to
	}
	resp.RandomSongs, err = h.songList(c, q)
	return err
}

// years returns the fromYear and toYear parameters, 0 and 9999 when
// absent.
func (c *call) years() (from, to int, err error) {
	if from, err = c.intParam("fromYear", 0, 0, 9999); err != nil {
		return 0, 0, err
	}
	if to, err = c.intParam("toYear", 9999, 0, 9999); err != nil {
		return 0, 0, err
	}
	return from, to, nil
}

// songList answers the songs of q.
func (h *Handler) songList(c *call, q store.SongQuery) (*songs, error) {
	list, err := h.store.BrowseSongs(c.ctx, q)
	if err != nil {
		return nil, err
	}
	return &songs{Songs: newChildren(list)}, nil
}

func (h *Handler) getSongsByGenre(c *call, resp *response) error {
	g, err := c.param("genre", true)
	if err != nil {
		return err
	}
	count, offset, err := c.page("count")
	if err != nil {
		return err
	}
	resp.SongsByGenre, err = h.songList(c, store.SongQuery{Genre: g, Limit: count, Offset: offset})
	return err
}

// getTopSongs answers the most popular songs of the artist named artist
// (the best search match whose name is the same, letter case and
// accents aside), as GET /artists/{id}/songs orders them.
func (h *Handler) getTopSongs(c *call, resp *response) error {
	name, err := c.param("artist", true)
	if err != nil {
		return err
	}
	count, err := c.intParam("count", 50, 1, maxListSize)
	if err != nil {
		return err
	}
	resp.TopSongs = &songs{Songs: []child{}}
	q, err := h.catalog.SearchQuery(name)
	if err != nil {
		return err
	}
	res, err := h.store.SearchArtists(c.ctx, q, 20, 0)
	if err != nil {
		return err
	}
	for _, a := range res.Items {
		if store.Fold(a.Name).Key == store.Fold(name).Key {
			list, _, err := h.store.ArtistSongs(c.ctx, a.ID, count, 0)
			if err != nil {
				return err
			}
			resp.TopSongs.Songs = newChildren(list)
			break
		}
	}
	return nil
}

// search3 searches artists, albums and songs with the search engine of
// GET /search, each with its count and offset. An empty query (some apps
// sync their library so) lists the catalog instead.
func (h *Handler) search3(c *call, resp *response) error {
	text := c.r.Form.Get("query")
	if _, ok := c.r.Form["query"]; !ok {
		return Fail(CodeMissingParameter, "Required parameter is missing: query.")
	}
	if err := c.checkFolder(); err != nil {
		return err
	}
	var counts, offsets [3]int
	for i, kind := range []string{"artist", "album", "song"} {
		var err error
		if counts[i], err = c.intParam(kind+"Count", 20, 0, maxListSize); err != nil {
			return err
		}
		if offsets[i], err = c.intParam(kind+"Offset", 0, 0, maxListOffset); err != nil {
			return err
		}
	}
	out := &searchResult{Artists: []artistID3{}, Albums: []albumID3{}, Songs: []child{}}
	resp.Search3 = out
	if text == `""` || text == "" {
		return h.listAll(c, out, counts, offsets)
	}
	q, err := h.catalog.SearchQuery(text)
	if err != nil {
		return err
	}
	if n := counts[0]; n > 0 && offsets[0] < store.MaxSearchTotal {
		res, err := h.store.SearchArtists(c.ctx, q, min(n, store.MaxSearchTotal-offsets[0]), offsets[0])
		if err != nil {
			return err
		}
		for _, a := range res.Items {
			out.Artists = append(out.Artists, newArtist(a, nil))
		}
	}
	if n := counts[1]; n > 0 && offsets[1] < store.MaxSearchTotal {
		res, err := h.store.SearchAlbums(c.ctx, q, min(n, store.MaxSearchTotal-offsets[1]), offsets[1])
		if err != nil {
			return err
		}
		ids := make([]int64, len(res.Items))
		for i, al := range res.Items {
			ids[i] = al.ID
		}
		albums, err := h.store.BrowseAlbums(c.ctx, store.AlbumQuery{IDs: ids, Order: store.AlbumsByIDs})
		if err != nil {
			return err
		}
		out.Albums = newAlbums(albums)
	}
	if n := counts[2]; n > 0 && offsets[2] < store.MaxSearchTotal {
		res, err := h.store.SearchSongs(c.ctx, q, min(n, store.MaxSearchTotal-offsets[2]), offsets[2])
		if err != nil {
			return err
		}
		out.Songs = newChildren(res.Items)
	}
	return nil
}

// listAll answers search3 with an empty query: pages of the catalog.
func (h *Handler) listAll(c *call, out *searchResult, counts, offsets [3]int) error {
	if counts[0] > 0 {
		as, err := h.store.BrowseArtists(c.ctx)
		if err != nil {
			return err
		}
		as = as[min(offsets[0], len(as)):]
		for _, a := range as[:min(counts[0], len(as))] {
			out.Artists = append(out.Artists, newArtist(a.Artist, &a.AlbumCount))
		}
	}
	if counts[1] > 0 {
		albums, err := h.store.BrowseAlbums(c.ctx, store.AlbumQuery{Order: store.AlbumsByName, Limit: counts[1], Offset: offsets[1]})
		if err != nil {
			return err
		}
		out.Albums = newAlbums(albums)
	}
	if counts[2] > 0 {
		list, err := h.store.BrowseSongs(c.ctx, store.SongQuery{Limit: counts[2], Offset: offsets[2]})
		if err != nil {
			return err
		}
		out.Songs = newChildren(list)
	}
	return nil
}

// notFound answers store.ErrNotFound as error 70 naming what.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return Fail(CodeNotFound, "No such %s.", what)
	}
	return err
}
