package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Browsing the whole catalog, as the Subsonic API does (issue 19; package
// catalogd/subsonic): artists and albums with what they hold, album lists
// in several orders, genres, random songs and songs of a genre. Only ready
// songs count, and an album or artist without one is not listed.

// MaxBrowseArtists caps BrowseArtists: the Subsonic index lists every
// artist in one answer, which a catalog of millions cannot give.
const MaxBrowseArtists = 10_000

// ArtistSummary is an artist with the number of its albums that hold a
// ready song.
type ArtistSummary struct {
	Artist
	AlbumCount int
}

// BrowseArtists returns up to MaxBrowseArtists artists with a listed
// album, by name.
func (s *Store) BrowseArtists(ctx context.Context) ([]ArtistSummary, error) {
	out, err := queryAll(ctx, s.read, func(r scanner) (ArtistSummary, error) {
		var as ArtistSummary
		a, err := scanArtist(r, &as.AlbumCount)
		as.Artist = a
		return as, err
	}, `SELECT a.id, a.owner_user_id, a.name, a.bio, a.image_url, a.popularity,
		a.created_at, a.updated_at, COUNT(DISTINCT s.album_id)
		FROM artists a JOIN albums al ON al.artist_id = a.id JOIN songs s ON s.album_id = al.id AND s.status = 'ready'
		GROUP BY a.id ORDER BY a.name_key, a.id LIMIT $1`, MaxBrowseArtists)
	if err != nil {
		return nil, fmt.Errorf("store: browse artists: %w", err)
	}
	return out, nil
}

// Album list orders (AlbumQuery.Order).
const (
	AlbumsNewest       = "newest"  // added to the catalog, newest first
	AlbumsByName       = "name"    // by title
	AlbumsByArtistName = "artist"  // by artist name, then title
	AlbumsPopular      = "popular" // most played first
	AlbumsRandom       = "random"  // shuffled
	AlbumsByYear       = "year"    // release date, oldest first
	AlbumsByIDs        = "ids"     // in the order of AlbumQuery.IDs
	albumsDefaultOrder = AlbumsByArtistName
)

// AlbumQuery selects albums for BrowseAlbums. Zero fields do not filter.
type AlbumQuery struct {
	Order    string
	ArtistID int64
	Genre    string  // albums with a ready song of this genre (counted alone)
	FromYear int     // release year at least FromYear and at most ToYear
	ToYear   int     // (both set to filter)
	IDs      []int64 // only these albums
	Limit    int
	Offset   int
}

// AlbumSummary is an album with its ready songs' count, total duration and
// first genre.
type AlbumSummary struct {
	Album
	SongCount  int
	DurationMS int64
	Genre      string
}

// BrowseAlbums returns a page of the albums q selects that hold a ready
// song.
func (s *Store) BrowseAlbums(ctx context.Context, q AlbumQuery) ([]AlbumSummary, error) {
	var b strings.Builder
	var qb queryBuilder
	arg := qb.arg
	b.WriteString(`SELECT ` + albumColumns + `, COUNT(s.id), COALESCE(SUM(s.duration_ms), 0), COALESCE(MIN(NULLIF(s.genre, '')), '')
		FROM albums al JOIN artists ar ON ar.id = al.artist_id JOIN songs s ON s.album_id = al.id AND s.status = 'ready'`)
	var where []string
	if q.ArtistID != 0 {
		where = append(where, `al.artist_id = `+arg(q.ArtistID))
	}
	if q.Genre != "" {
		where = append(where, `s.genre = `+arg(q.Genre))
	}
	if q.FromYear != 0 || q.ToYear != 0 {
		where = append(where, releasedWithin(arg, q.FromYear, q.ToYear))
	}
	if q.IDs != nil {
		if len(q.IDs) == 0 {
			return nil, nil
		}
		ids := make([]string, len(q.IDs))
		for i, id := range q.IDs {
			ids[i] = arg(id)
		}
		where = append(where, `al.id IN (`+strings.Join(ids, ", ")+`)`)
	}
	if len(where) > 0 {
		b.WriteString(` WHERE ` + strings.Join(where, ` AND `))
	}
	b.WriteString(` GROUP BY al.id, ar.id ORDER BY `)
	order := q.Order
	if order == "" {
		order = albumsDefaultOrder
	}
	switch order {
	case AlbumsNewest:
		b.WriteString(`al.created_at DESC, al.id DESC`)
	case AlbumsByName:
		b.WriteString(`al.name_key, al.id`)
	case AlbumsByArtistName:
		b.WriteString(`ar.name_key, al.name_key, al.id`)
	case AlbumsPopular:
		b.WriteString(`al.popularity DESC, al.id`)
	case AlbumsRandom:
		b.WriteString(`RANDOM()`)
	case AlbumsByYear:
		b.WriteString(`al.release_date, al.id`)
	case AlbumsByIDs:
		b.WriteString(`al.id`) // reordered below
	default:
		return nil, fmt.Errorf("store: browse albums: unknown order %q", q.Order)
	}
	if q.Limit > 0 {
		b.WriteString(` LIMIT ` + arg(q.Limit) + ` OFFSET ` + arg(q.Offset))
	}
	out, err := queryAll(ctx, s.read, func(r scanner) (AlbumSummary, error) {
		var as AlbumSummary
		al, err := scanAlbum(r, &as.SongCount, &as.DurationMS, &as.Genre)
		as.Album = al
		return as, err
	}, b.String(), qb.args...)
	if err != nil {
		return nil, fmt.Errorf("store: browse albums: %w", err)
	}
	if order == AlbumsByIDs {
		pos := make(map[int64]int, len(q.IDs))
		for i, id := range q.IDs {
			if _, ok := pos[id]; !ok {
				pos[id] = i
			}
		}
		slices.SortStableFunc(out, func(a, b AlbumSummary) int { return pos[a.ID] - pos[b.ID] })
	}
	return out, nil
}

// releasedWithin is the condition that an album (al) came out in the
// years from..to, either way round; arg adds a query argument.
func releasedWithin(arg func(any) string, from, to int) string {
	lo, hi := min(from, to), max(from, to)
	return `al.release_date >= ` + arg(fmt.Sprintf("%04d", lo)) + ` AND al.release_date < ` + arg(fmt.Sprintf("%04d", hi+1))
}

// GenreSummary is a genre with its ready songs and the albums they are on.
type GenreSummary struct {
	Name       string
	SongCount  int
	AlbumCount int
}

// Genres returns the genres of ready songs, by name.
func (s *Store) Genres(ctx context.Context) ([]GenreSummary, error) {
	out, err := queryAll(ctx, s.read, func(r scanner) (GenreSummary, error) {
		var g GenreSummary
		err := r.Scan(&g.Name, &g.SongCount, &g.AlbumCount)
		return g, err
	}, `SELECT genre, COUNT(*), COUNT(DISTINCT album_id) FROM songs
		WHERE status = 'ready' AND genre <> '' GROUP BY genre ORDER BY genre`)
	if err != nil {
		return nil, fmt.Errorf("store: genres: %w", err)
	}
	return out, nil
}

// SongQuery selects ready songs for BrowseSongs. Zero fields do not
// filter.
type SongQuery struct {
	Genre    string
	FromYear int // release year of the album, both set to filter
	ToYear   int
	Random   bool // shuffled; otherwise most popular first
	Limit    int
	Offset   int
}

// BrowseSongs returns a page of the ready songs q selects.
func (s *Store) BrowseSongs(ctx context.Context, q SongQuery) ([]Song, error) {
	where := []string{`s.status = 'ready'`}
	var qb queryBuilder
	arg := qb.arg
	if q.Genre != "" {
		where = append(where, `s.genre = `+arg(q.Genre))
	}
	if q.FromYear != 0 || q.ToYear != 0 {
		where = append(where, releasedWithin(arg, q.FromYear, q.ToYear))
	}
	order := `s.popularity DESC, s.id`
	if q.Random {
		order = `RANDOM()`
	}
	sql := songSelect + ` WHERE ` + strings.Join(where, ` AND `) + ` ORDER BY ` + order +
		` LIMIT ` + arg(q.Limit) + ` OFFSET ` + arg(q.Offset)
	songs, err := s.querySongs(ctx, sql, qb.args...)
	if err != nil {
		return nil, fmt.Errorf("store: browse songs: %w", err)
	}
	return songs, nil
}
