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
// names of public ones now).
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

// MaxSearchTotal caps the matches a search counts, and so the deepest
// page (as Spotify's Web API does: offset + limit ≤ 1000). Counting is the
// one part of a search whose work grows with the number of matches; the
// cap bounds what a very common word costs.
const MaxSearchTotal = 1000

// SearchPage is one page of search results of one kind.
type SearchPage[T any] struct {
	Items []T
	// Total is how many match, counted up to MaxSearchTotal; Capped says
	// there are more. On PostgreSQL a term estimated at more than
	// MaxSearchTotal matches (pgSearch) is not counted: Total is
	// MaxSearchTotal and Capped is set. Total is exact when Capped is not.
	Total  int
	Capped bool
}

// rankIDBits is how many low bits of a rank_key hold the id.
const rankIDBits = 40

func idOfRank(rk int64) int64 { return rk & (1<<rankIDBits - 1) }

// searchSpec describes how one kind of entity is searched.
type searchSpec struct {
	table   string // base table, e.g. "songs"
	alias   string // its alias in selectFrom, e.g. "s"
	fts     string // SQLite FTS5 table (rowid = rank_key)
	visible string // condition for rows that may be listed (partial indexes match it), or ""
	// extra: the index has a second column (weight B on PostgreSQL) of
	// words the row is also found by (credited artists, album title).
	extra bool
	// selectFrom is "SELECT cols FROM table alias JOIN …" for the scanner.
	selectFrom string
	// walkIndex is the PostgreSQL index of rank_key with search_tsv
	// included (migration 0016) that pgSearch walks.
	walkIndex string
}

var (
	songSearch = searchSpec{table: "songs", alias: "s", fts: "songs_fts", visible: "s.status = 'ready'", extra: true,
		selectFrom: songSelect, walkIndex: "songs_rank_search_ready"}
	artistSearch = searchSpec{table: "artists", alias: "ar", fts: "artists_fts", walkIndex: "artists_rank_search",
		selectFrom: `SELECT ar.id, ar.owner_user_id, ar.name, ar.bio, ar.image_url, ar.popularity, ar.created_at, ar.updated_at FROM artists ar`}
	albumSearch = searchSpec{table: "albums", alias: "al", fts: "albums_fts", extra: true, walkIndex: "albums_rank_search",
		selectFrom: `SELECT ` + albumColumns + ` FROM albums al JOIN artists ar ON ar.id = al.artist_id`}
	playlistSearch = searchSpec{table: "playlists", alias: "p", fts: "playlists_fts", visible: "p.is_public",
		walkIndex: "playlists_rank_search_public",
		selectFrom: `SELECT p.id, p.owner_user_id, u.display_name, p.name, p.description, p.is_public, p.popularity,
			p.created_at, p.updated_at FROM playlists p JOIN users u ON u.id = p.owner_user_id`}
)

// SearchSongs returns a page of the ready songs matching q. Ranking: see
// the package documentation.
func (s *Store) SearchSongs(ctx context.Context, q Query, limit, offset int) (SearchPage[Song], error) {
	p, err := search(ctx, s, songSearch, q, limit, offset, func(r *sql.Rows) (Song, int64, error) {
		so, err := scanSong(r)
		return so, so.ID, err
	})
	if err == nil {
		err = loadCredits(ctx, s.read, p.Items)
	}
	if err != nil {
		return p, fmt.Errorf("store: search songs: %w", err)
	}
	return p, nil
}

// SearchArtists returns a page of the artists matching q.
func (s *Store) SearchArtists(ctx context.Context, q Query, limit, offset int) (SearchPage[Artist], error) {
	p, err := search(ctx, s, artistSearch, q, limit, offset, func(r *sql.Rows) (Artist, int64, error) {
		a, err := scanArtist(r)
		return a, a.ID, err
	})
	if err != nil {
		return p, fmt.Errorf("store: search artists: %w", err)
	}
	return p, nil
}

// SearchAlbums returns a page of the albums matching q.
func (s *Store) SearchAlbums(ctx context.Context, q Query, limit, offset int) (SearchPage[Album], error) {
	p, err := search(ctx, s, albumSearch, q, limit, offset, func(r *sql.Rows) (Album, int64, error) {
		al, err := scanAlbum(r)
		return al, al.ID, err
	})
	if err != nil {
		return p, fmt.Errorf("store: search albums: %w", err)
	}
	return p, nil
}

// SearchPlaylists returns a page of the public playlists matching q.
func (s *Store) SearchPlaylists(ctx context.Context, q Query, limit, offset int) (SearchPage[Playlist], error) {
	p, err := search(ctx, s, playlistSearch, q, limit, offset, func(r *sql.Rows) (Playlist, int64, error) {
		pl, err := scanPlaylist(r)
		return pl, pl.ID, err
	})
	if err != nil {
		return p, fmt.Errorf("store: search playlists: %w", err)
	}
	return p, nil
}

func scanPlaylist(r *sql.Rows) (Playlist, error) {
	var p Playlist
	var created, updated int64
	err := r.Scan(&p.ID, &p.OwnerUserID, &p.OwnerName, &p.Name, &p.Description, &p.IsPublic, &p.Popularity, &created, &updated)
	p.CreatedAt, p.UpdatedAt = fromMs(created), fromMs(updated)
	return p, err
}

// search finds the rows of one kind matching q, in ranking order:
//
//	tier 0: the folded name is the query;
//	tier 1: every query word is a word of the name;
//	tier 2: every query word is somewhere (name, credits, album);
//
// each tier by rank_key (popularity bucket, then newest). Every tier is
// read in rank_key order and stops at the page's end (on PostgreSQL see
// pgSearch), so a word in half the catalog costs what a rare one does. Short
// queries (one or two characters) search names only. On PostgreSQL a
// query that matches nothing falls back to trigram similarity of names.
func search[T any](ctx context.Context, s *Store, spec searchSpec, q Query, limit, offset int,
	scan func(*sql.Rows) (T, int64, error)) (SearchPage[T], error) {
	var p SearchPage[T]
	if q.Empty() {
		return p, nil
	}
	all, names := s.matchers(spec, q)
	var keys []int64
	var n int
	var err error
	if s.dialect == Postgres {
		keys, n, err = s.pgSearch(ctx, spec, q, all, names, offset+limit)
	} else {
		keys, n, err = s.sqliteSearch(ctx, spec, q, all, names, offset+limit)
	}
	if err != nil {
		return p, err
	}
	p.Total, p.Capped = min(n, MaxSearchTotal), n > MaxSearchTotal
	if p.Total == 0 {
		if s.dialect == Postgres && !q.Short() {
			return fuzzySearch(ctx, s, spec, q, limit, offset, scan)
		}
		return p, nil
	}
	if offset >= len(keys) {
		return p, nil
	}
	need := offset + limit
	keys = keys[offset:min(len(keys), need)]
	p.Items, err = loadByRank(ctx, s, spec, keys, scan)
	return p, err
}

// sqliteSearch returns the rank keys of the first need results in ranking
// order (see search) and how many rows match, counted to MaxSearchTotal+1.
func (s *Store) sqliteSearch(ctx context.Context, spec searchSpec, q Query, all, names matcher, need int) ([]int64, int, error) {
	// Counting runs beside the tier reads; it is the costlier part.
	var n int
	var countErr error
	counted := make(chan struct{})
	if s.replicas != nil {
		ctx = carryMethod(ctx) // the goroutine's stack does not show the Store method
	}
	go func() {
		defer close(counted)
		n, countErr = s.countMatches(ctx, spec, all)
	}()
	keys, err := s.tierKeys(ctx, spec, q, all, names, need)
	<-counted
	if err == nil {
		err = countErr
	}
	return keys, n, err
}

// exactKeys returns the rank keys of tier 0, the rows whose folded name
// is the query, most popular first.
func (s *Store) exactKeys(ctx context.Context, spec searchSpec, q Query, need int) ([]int64, error) {
	// On SQLite the value is bound through +$1: with sqlite_stat4 rows for
	// the name_key index a bare $1 makes SQLite re-prepare the statement
	// at every new binding (the value might change the estimates), which
	// cost more than the lookup itself; the plan (the name_key index) is
	// the same for every value.
	cond := "name_key = $1"
	if s.dialect == SQLite {
		cond = "name_key = +$1"
	}
	return s.rankKeys(ctx, spec, cond, need, q.Key)
}

// tierKeys returns the rank keys of the first need results in ranking
// order on SQLite (see search).
func (s *Store) tierKeys(ctx context.Context, spec searchSpec, q Query, all, names matcher, need int) ([]int64, error) {
	keys, err := s.exactKeys(ctx, spec, q, need)
	if err != nil {
		return nil, err
	}
	more, err := s.matchKeys(ctx, spec, names, need+len(keys))
	if err != nil {
		return nil, err
	}
	keys = appendNew(keys, more)
	if len(keys) < need && hasRest(spec, q) {
		rest, err := s.matchKeys(ctx, spec, all.except(names), need-len(keys))
		if err != nil {
			return nil, err
		}
		keys = append(keys, rest...)
	}
	return keys, nil
}

// hasRest reports whether a search of spec for q has a tier 2: words
// found outside the name (short queries match names only).
func hasRest(spec searchSpec, q Query) bool { return spec.extra && !q.Short() }

// appendNew appends to keys those of more that keys does not hold.
func appendNew(keys, more []int64) []int64 {
	seen := make(map[int64]bool, len(keys))
	for _, k := range keys {
		seen[k] = true
	}
	for _, k := range more {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// matcher is a full-text condition in the store's dialect: an FTS5 MATCH
// expression or a to_tsquery text (with an optional one to exclude). On
// PostgreSQL names (and notNames) say that the text is matched against
// the name words alone: ts_filter(search_tsv, '{a}'), which has a GIN
// index of its own (migration 0015). A weighted tsquery ('word':*A) on
// search_tsv would read every row whose tsvector holds the word in any
// weight and recheck the weight in the heap: a name word that is also a
// credited artist's ("beyonce") cost 31,681 heap rows for 646 matches.
//
// row and notRow are expr and not as a condition on search_tsv itself
// (names: every lexeme weighted A), which a walk of the rank index that
// includes search_tsv checks without reading the table (pgSearch).
type matcher struct {
	expr, not       string
	row, notRow     string
	names, notNames bool
}

func (m matcher) except(n matcher) matcher {
	return matcher{expr: m.expr, row: m.row, names: m.names, not: n.expr, notRow: n.row, notNames: n.names}
}

// matchers returns the conditions "every word anywhere" and "every word
// in the name" for q. Short queries match names only.
func (s *Store) matchers(spec searchSpec, q Query) (all, names matcher) {
	if s.dialect == SQLite {
		names = matcher{expr: "{search_text} : (" + q.FTS5() + ")"}
		all = matcher{expr: q.FTS5()}
	} else {
		names = matcher{expr: q.TSQuery(), row: q.TSQueryWeighted("A"), names: true}
		all = matcher{expr: q.TSQuery(), row: q.TSQuery()}
	}
	if q.Short() || !spec.extra {
		all = names
	}
	return all, names
}

// countMatches counts the rows matching m, stopping past MaxSearchTotal.
func (s *Store) countMatches(ctx context.Context, spec searchSpec, m matcher) (int, error) {
	var b queryBuilder
	inner := s.matchQuery(spec, m, &b, "1")
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+inner+` LIMIT `+b.arg(MaxSearchTotal+1)+`) c`, b.args...).Scan(&n)
	return n, err
}

// matchKeys returns the rank keys of the first n rows matching m in
// descending rank_key order (SQLite: FTS5 rowids are rank keys).
func (s *Store) matchKeys(ctx context.Context, spec searchSpec, m matcher, n int) ([]int64, error) {
	var b queryBuilder
	q := s.matchQuery(spec, m, &b, "rowid") + ` ORDER BY rowid DESC LIMIT ` + b.arg(n)
	return queryColumn[int64](ctx, s.read, q, b.args...)
}

// matchQuery is "SELECT col FROM … WHERE <m matches>".
func (s *Store) matchQuery(spec searchSpec, m matcher, b *queryBuilder, col string) string {
	if s.dialect == SQLite {
		expr := m.expr
		if m.not != "" {
			expr = "(" + m.expr + ") NOT (" + m.not + ")"
		}
		return fmt.Sprintf("SELECT %s FROM %s WHERE %s MATCH %s", col, spec.fts, spec.fts, b.arg(expr))
	}
	tsv := func(names bool) string {
		if names {
			return "ts_filter(" + spec.alias + ".search_tsv, '{a}')"
		}
		return spec.alias + ".search_tsv"
	}
	where := fmt.Sprintf("%s @@ %s", tsv(m.names), tsQuery(b, m.expr))
	if m.not != "" {
		where += fmt.Sprintf(" AND NOT %s @@ %s", tsv(m.notNames), tsQuery(b, m.not))
	}
	if spec.visible != "" {
		where += " AND " + spec.visible
	}
	return fmt.Sprintf("SELECT %s FROM %s %s WHERE %s", col, spec.table, spec.alias, where)
}

// rankKeys returns the rank keys of the first n visible rows satisfying
// cond (with args $1…), in descending rank_key order.
func (s *Store) rankKeys(ctx context.Context, spec searchSpec, cond string, n int, args ...any) ([]int64, error) {
	a := spec.alias
	where := a + "." + cond
	if spec.visible != "" {
		where += " AND " + spec.visible
	}
	q := fmt.Sprintf("SELECT %s.rank_key FROM %s %s WHERE %s ORDER BY %s.rank_key DESC LIMIT $%d",
		a, spec.table, a, where, a, len(args)+1)
	return queryColumn[int64](ctx, s.read, q, append(args, n)...)
}

// queryColumn runs q and returns its one column's values in order.
func queryColumn[T any](ctx context.Context, db querier, q string, args ...any) ([]T, error) {
	return queryAll(ctx, db, func(r scanner) (T, error) {
		var v T
		err := r.Scan(&v)
		return v, err
	}, q, args...)
}

// loadByRank loads the rows whose rank keys are keys, in that order.
func loadByRank[T any](ctx context.Context, s *Store, spec searchSpec, keys []int64,
	scan func(*sql.Rows) (T, int64, error)) ([]T, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	ids := make([]any, len(keys))
	pos := make(map[int64]int, len(keys))
	for i, k := range keys {
		ids[i] = idOfRank(k)
		pos[idOfRank(k)] = i
	}
	rows, err := s.read.QueryContext(ctx, spec.selectFrom+" WHERE "+spec.alias+".id IN ("+placeholders(1, len(ids))+")", ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]T, len(keys))
	found := make([]bool, len(keys))
	for rows.Next() {
		it, id, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if i, ok := pos[id]; ok {
			out[i], found[i] = it, true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// A row deleted between the index read and the load is skipped.
	kept := out[:0]
	for i, it := range out {
		if found[i] {
			kept = append(kept, it)
		}
	}
	return kept, nil
}

// fuzzySearch answers a PostgreSQL query that matched no words with the
// names most similar to it (pg_trgm), most similar first. The page and
// the count come from one read of the trigram index (a window count).
func fuzzySearch[T any](ctx context.Context, s *Store, spec searchSpec, q Query, limit, offset int,
	scan func(*sql.Rows) (T, int64, error)) (SearchPage[T], error) {
	var p SearchPage[T]
	a := spec.alias
	from := fmt.Sprintf("FROM %s %s%s", spec.table, a, visibleWhere(spec, a+".name_key % $1"))
	keys, n, err := s.probe(ctx, fmt.Sprintf(`SELECT %s.rank_key, count(*) OVER () %s
		ORDER BY similarity(%s.name_key, $1) DESC, %s.rank_key DESC LIMIT $2 OFFSET $3`, a, from, a, a),
		[]any{q.Key, limit, offset})
	if err == nil && len(keys) == 0 && offset > 0 {
		// A page past the end has no row to carry the count.
		err = s.read.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT 1 %s LIMIT %d) c`, from, MaxSearchTotal+1),
			q.Key).Scan(&n)
	}
	if err != nil {
		return p, err
	}
	p.Total, p.Capped = min(n, MaxSearchTotal), n > MaxSearchTotal
	p.Items, err = loadByRank(ctx, s, spec, keys, scan)
	return p, err
}

// queryBuilder numbers the parameters of a query as it is written.
type queryBuilder struct{ args []any }

// arg adds v as the next parameter and returns its placeholder.
func (b *queryBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// setList writes the SET list of an UPDATE, numbering its parameters.
type setList struct {
	queryBuilder
	sets []string
}

// add sets col to v.
func (l *setList) add(col string, v any) { l.sets = append(l.sets, col+" = "+l.arg(v)) }

// String returns the list, comma-separated.
func (l *setList) String() string { return strings.Join(l.sets, ", ") }

// Full-text index upkeep (SQLite).
//
// An FTS5 index is a stack of b-tree segments: every write transaction
// adds one, a bulk 'rebuild' leaves a few dozen, and FTS5's own merging
// keeps ten or twenty on a catalog that is written to. A query looks every
// term and prefix up in every segment, so the cost of a search grows with
// the number of segments: on the 1,000,000-song catalog, 27 segments made
// a four-group two-word search several times slower than one segment
// does. Optimize merges each index into one segment, and a running Store
// merges again in the background once an index has more than
// maxSearchSegments (Options.SearchUpkeep).
//
// ANALYZE also writes statistics for the indexes' shadow tables
// (songs_fts_idx, …). With sqlite_stat4 rows for them, every statement
// FTS5 runs on its shadow tables is re-prepared whenever a new value is
// bound (the value might change the plan: there is only one plan), which
// is once per term per segment of every query: that doubled the cost of
// full-text reads. Optimize removes those statistics after ANALYZE, and
// Open removes any an older binary left behind.

// ftsTables are the SQLite full-text indexes.
var ftsTables = []string{"songs_fts", "artists_fts", "albums_fts", "playlists_fts"}

const (
	// maxSearchSegments is how many segments the background upkeep lets
	// an index have before it merges it into one.
	maxSearchSegments = 8
	// searchMergePages is how many pages one merge step writes: one write
	// transaction of some tens of milliseconds, so writers wait at most
	// that long for the upkeep.
	searchMergePages = 256
	// defaultSearchUpkeep is how often a Store checks its indexes.
	defaultSearchUpkeep = 5 * time.Minute
)

// SearchSegments returns how many b-tree segments each SQLite full-text
// index has, by table name (nil on PostgreSQL).
func (s *Store) SearchSegments(ctx context.Context) (map[string]int, error) {
	if s.dialect != SQLite {
		return nil, nil
	}
	segs := make(map[string]int, len(ftsTables))
	for _, t := range ftsTables {
		n, err := s.searchSegments(ctx, t)
		if err != nil {
			return nil, err
		}
		segs[t] = n
	}
	return segs, nil
}

// searchSegments counts the segments of FTS5 table t: every segment has
// at least one row (one per leaf page) in t's _idx shadow table.
func (s *Store) searchSegments(ctx context.Context, t string) (int, error) {
	var n int
	if err := s.write.QueryRowContext(ctx, `SELECT COUNT(DISTINCT segid) FROM `+t+`_idx`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: segments of %s: %w", t, err)
	}
	return n, nil
}

// MergeSearchIndexes merges every SQLite full-text index that has more
// than over segments into a single segment. It works in steps of
// searchMergePages pages, each its own write transaction, so writes go on
// between steps; stopping it (ctx) leaves a valid index that the next call
// finishes. It does nothing on PostgreSQL.
func (s *Store) MergeSearchIndexes(ctx context.Context, over int) error {
	if s.dialect != SQLite {
		return nil
	}
	for _, t := range ftsTables {
		for {
			n, err := s.searchSegments(ctx, t)
			if err != nil {
				return err
			}
			if n <= max(over, 1) {
				break
			}
			// A negative page count merges segments of every level: an
			// optimize done in steps. The segment count drops when the
			// last step is written; a step that changes nothing means
			// there is nothing left to merge.
			var before, after int64
			if err := s.write.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&before); err != nil {
				return fmt.Errorf("store: merge %s: %w", t, err)
			}
			if _, err := s.write.ExecContext(ctx, `INSERT INTO `+t+`(`+t+`, rank) VALUES ('merge', $1)`, -searchMergePages); err != nil {
				return fmt.Errorf("store: merge %s: %w", t, err)
			}
			if err := s.write.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&after); err != nil {
				return fmt.Errorf("store: merge %s: %w", t, err)
			}
			if after-before < 2 {
				break
			}
		}
	}
	return nil
}

// optimizeSearch merges each SQLite full-text index into one segment in one
// statement per index (fastest; blocks writes meanwhile: for bulk loads).
func (s *Store) optimizeSearch(ctx context.Context) error {
	for _, t := range ftsTables {
		if _, err := s.write.ExecContext(ctx, `INSERT INTO `+t+`(`+t+`) VALUES ('optimize')`); err != nil {
			return fmt.Errorf("store: optimize %s: %w", t, err)
		}
	}
	return nil
}

// dropSearchStats removes planner statistics of the full-text shadow
// tables (see above) and reloads the statistics when there were any. Run
// on the writer before reader connections open, or after ANALYZE.
func (s *Store) dropSearchStats(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var removed int64
		for _, stat := range []string{"sqlite_stat1", "sqlite_stat4"} {
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = $1`, stat).Scan(&exists); err != nil {
				return fmt.Errorf("store: %s: %w", stat, err)
			}
			if exists == 0 {
				continue
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM `+stat+` WHERE tbl LIKE '%\_fts\_%' ESCAPE '\'`)
			if err != nil {
				return fmt.Errorf("store: %s: %w", stat, err)
			}
			n, _ := res.RowsAffected()
			removed += n
		}
		if removed > 0 {
			if _, err := tx.ExecContext(ctx, `ANALYZE sqlite_schema`); err != nil {
				return fmt.Errorf("store: reload statistics: %w", err)
			}
		}
		return nil
	})
}

// startSearchUpkeep merges the full-text indexes in the background, once
// right away (a database an older binary wrote) and then every interval,
// until Close.
func (s *Store) startSearchUpkeep(every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.stopUpkeep = func() {
		cancel()
		<-done
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			// A failed pass leaves valid indexes (each step is a
			// transaction); the next one tries again.
			_ = s.MergeSearchIndexes(ctx, maxSearchSegments)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}
