package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Playlist is a user's list of songs (issue 6 adds its songs; search reads
// names and descriptions of public ones now).
type Playlist struct {
	ID          int64
	OwnerUserID int64
	OwnerName   string
	Name        string
	Description string
	IsPublic    bool
	Popularity  int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// searchSpec describes how one kind of entity is searched.
type searchSpec struct {
	table   string // base table, e.g. "songs"
	alias   string // its alias in selectFrom, e.g. "s"
	fts     string // SQLite FTS5 table
	visible string // condition for rows that may be listed (a partial index matches it), or ""
	// selectFrom is "SELECT cols FROM table alias JOIN …" for the scanner.
	selectFrom string
}

var (
	songSearch   = searchSpec{table: "songs", alias: "s", fts: "songs_fts", visible: "s.status = 'ready'", selectFrom: songSelect}
	artistSearch = searchSpec{table: "artists", alias: "ar", fts: "artists_fts", visible: "",
		selectFrom: `SELECT ar.id, ar.owner_user_id, ar.name, ar.bio, ar.image_url, ar.popularity, ar.created_at, ar.updated_at FROM artists ar`}
	albumSearch = searchSpec{table: "albums", alias: "al", fts: "albums_fts", visible: "",
		selectFrom: `SELECT ` + albumColumns + ` FROM albums al JOIN artists ar ON ar.id = al.artist_id`}
	playlistSearch = searchSpec{table: "playlists", alias: "p", fts: "playlists_fts", visible: "p.is_public",
		selectFrom: `SELECT p.id, p.owner_user_id, u.display_name, p.name, p.description, p.is_public, p.popularity,
			p.created_at, p.updated_at FROM playlists p JOIN users u ON u.id = p.owner_user_id`}
)

// SearchSongs returns a page of the ready songs matching q and how many
// match in all. Ranking: see the package documentation.
func (s *Store) SearchSongs(ctx context.Context, q Query, limit, offset int) ([]Song, int, error) {
	songs, total, err := search(ctx, s, songSearch, q, limit, offset, func(r *sql.Rows) (Song, error) { return scanSong(r) })
	if err == nil {
		err = loadCredits(ctx, s.read, songs)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: search songs: %w", err)
	}
	return songs, total, nil
}

// SearchArtists returns a page of the artists matching q and the total.
func (s *Store) SearchArtists(ctx context.Context, q Query, limit, offset int) ([]Artist, int, error) {
	as, total, err := search(ctx, s, artistSearch, q, limit, offset, func(r *sql.Rows) (Artist, error) { return scanArtist(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("store: search artists: %w", err)
	}
	return as, total, nil
}

// SearchAlbums returns a page of the albums matching q and the total.
func (s *Store) SearchAlbums(ctx context.Context, q Query, limit, offset int) ([]Album, int, error) {
	als, total, err := search(ctx, s, albumSearch, q, limit, offset, func(r *sql.Rows) (Album, error) { return scanAlbum(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("store: search albums: %w", err)
	}
	return als, total, nil
}

// SearchPlaylists returns a page of the public playlists matching q and the
// total.
func (s *Store) SearchPlaylists(ctx context.Context, q Query, limit, offset int) ([]Playlist, int, error) {
	ps, total, err := search(ctx, s, playlistSearch, q, limit, offset, scanPlaylist)
	if err != nil {
		return nil, 0, fmt.Errorf("store: search playlists: %w", err)
	}
	return ps, total, nil
}

func scanPlaylist(r *sql.Rows) (Playlist, error) {
	var p Playlist
	var created, updated int64
	err := r.Scan(&p.ID, &p.OwnerUserID, &p.OwnerName, &p.Name, &p.Description, &p.IsPublic, &p.Popularity, &created, &updated)
	p.CreatedAt, p.UpdatedAt = fromMs(created), fromMs(updated)
	return p, err
}

// search runs the search of one entity kind: a name-prefix range for short
// queries, the word index otherwise, and (PostgreSQL) trigram similarity
// when the word index finds nothing.
func search[T any](ctx context.Context, s *Store, spec searchSpec, q Query, limit, offset int,
	scan func(*sql.Rows) (T, error)) ([]T, int, error) {
	if q.Empty() {
		return nil, 0, nil
	}
	var b queryBuilder
	var where, from string
	switch {
	case q.Short():
		where = fmt.Sprintf("%s.name_key >= %s AND %s.name_key < %s", spec.alias, b.arg(q.Key), spec.alias, b.arg(prefixEnd(q.Key)))
	case s.dialect == SQLite:
		// The FTS table drives the join (CROSS JOIN keeps SQLite from
		// reordering it), each match looked up by rowid.
		from = fmt.Sprintf("%s f CROSS JOIN ", spec.fts)
		where = fmt.Sprintf("f.%s MATCH %s AND %s.id = f.rowid", spec.fts, b.arg(q.FTS5()), spec.alias)
	default:
		where = fmt.Sprintf("%s.search_tsv @@ to_tsquery('simple', %s)", spec.alias, b.arg(q.TSQuery()))
	}
	if spec.visible != "" {
		where += " AND " + spec.visible
	}
	items, total, err := searchPage(ctx, s, spec, &b, from, where, q, limit, offset, scan)
	if err != nil || total > 0 || s.dialect != Postgres || q.Short() {
		return items, total, err
	}
	// Nothing matched word for word: try names that look alike (typos).
	var fb queryBuilder
	where = fmt.Sprintf("%s.name_key %% %s", spec.alias, fb.arg(q.Key))
	if spec.visible != "" {
		where += " AND " + spec.visible
	}
	return searchPage(ctx, s, spec, &fb, "", where, q, limit, offset, scan)
}

// searchPage counts the rows matching where and returns the page of them in
// ranking order.
func searchPage[T any](ctx context.Context, s *Store, spec searchSpec, b *queryBuilder, from, where string, q Query,
	limit, offset int, scan func(*sql.Rows) (T, error)) ([]T, int, error) {
	var total int
	countFrom := from + spec.table + " " + spec.alias
	if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+countFrom+" WHERE "+where, b.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if total == 0 || offset >= total {
		return nil, total, nil
	}
	a := spec.alias
	// Relevance tier: 0 the name is the query, 1 the name starts with it,
	// 2 every query word is in the name, 3 matched elsewhere (credits,
	// album). Then popularity, then id for a stable order.
	tier := fmt.Sprintf("CASE WHEN %s.name_key = %s THEN 0 WHEN %s.name_key >= %s AND %s.name_key < %s THEN 1",
		a, b.arg(q.Key), a, b.arg(q.Key), a, b.arg(prefixEnd(q.Key)))
	if pats := q.likeWords(); len(pats) > 0 {
		conds := make([]string, len(pats))
		for i, p := range pats {
			conds[i] = fmt.Sprintf("(' ' || %s.search_text || ' ') LIKE %s ESCAPE '\\'", a, b.arg(p))
		}
		tier += " WHEN " + strings.Join(conds, " AND ") + " THEN 2"
	}
	tier += " ELSE 3 END"
	sel := spec.selectFrom
	if from != "" {
		// Put the driving FTS table in front of the base table.
		sel = strings.Replace(sel, "FROM "+spec.table+" ", "FROM "+from+spec.table+" ", 1)
	}
	query := fmt.Sprintf("%s WHERE %s ORDER BY %s, %s.popularity DESC, %s.id LIMIT %s OFFSET %s",
		sel, where, tier, a, a, b.arg(limit), b.arg(offset))
	rows, err := s.read.QueryContext(ctx, query, b.args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	items := make([]T, 0, limit)
	for rows.Next() {
		it, err := scan(rows)
		if err != nil {
			return nil, 0, err
		}
		items = append(items, it)
	}
	return items, total, rows.Err()
}

// queryBuilder numbers the parameters of a query as it is written.
type queryBuilder struct{ args []any }

// arg adds v as the next parameter and returns its placeholder.
func (b *queryBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}
