package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Playlist limits.
const (
	// MaxPlaylistItems is the most items a playlist holds.
	MaxPlaylistItems = 10_000
	// MaxPlaylistAdd is the most songs one AddPlaylistSongs call adds.
	MaxPlaylistAdd = 100
)

// Errors of playlist edits, wrapped with context.
var (
	// ErrStale: the edit named a snapshot that is no longer current.
	ErrStale = errors.New("stale snapshot")
	// ErrNotOwner: the playlist exists and is public, but the editor does
	// not own it. (A private playlist of someone else is ErrNotFound.)
	ErrNotOwner = errors.New("not the owner")
	// ErrPlaylistFull: the edit would take the playlist past
	// MaxPlaylistItems.
	ErrPlaylistFull = errors.New("playlist full")
	// ErrOutOfRange: a position or range lies outside the playlist.
	ErrOutOfRange = errors.New("position out of range")
	// ErrNotInPlaylist: the song or item to remove is not in the
	// playlist. It wraps ErrNotFound.
	ErrNotInPlaylist = fmt.Errorf("not in the playlist: %w", ErrNotFound)
)

// UnknownSongsError lists song ids that do not exist (or are not ready):
// the edit or batch that named them changed nothing.
type UnknownSongsError struct {
	IDs []int64
}

func (e *UnknownSongsError) Error() string {
	ids := make([]string, len(e.IDs))
	for i, id := range e.IDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	return "unknown songs " + strings.Join(ids, ", ")
}

// PlaylistDetail is a playlist with its edit state.
type PlaylistDetail struct {
	Playlist
	// Version counts edits; SnapshotID is derived from it.
	Version   int64
	ItemCount int
	Followers int64
}

// SnapshotID names the playlist's current contents: it changes with every
// edit. It is opaque to clients.
func (p PlaylistDetail) SnapshotID() string { return SnapshotID(p.Version) }

// SnapshotID returns the snapshot id of a playlist version.
func SnapshotID(version int64) string { return fmt.Sprintf("%08x", version) }

// ParseSnapshotID returns the version a snapshot id names, or 0 when it is
// not a snapshot id (which then matches no version).
func ParseSnapshotID(s string) int64 {
	if len(s) < 8 || len(s) > 16 {
		return 0
	}
	v, err := strconv.ParseInt(s, 16, 64)
	if err != nil || v <= 0 || SnapshotID(v) != s {
		return 0
	}
	return v
}

const playlistColumns = `p.id, p.owner_user_id, u.display_name, p.name, p.description, p.is_public, p.popularity,
	p.created_at, p.updated_at, p.version, p.item_count, p.followers`

const playlistFrom = ` FROM playlists p JOIN users u ON u.id = p.owner_user_id`

func scanPlaylistDetail(row scanner, extra ...any) (PlaylistDetail, error) {
	var p PlaylistDetail
	var created, updated int64
	err := row.Scan(append([]any{&p.ID, &p.OwnerUserID, &p.OwnerName, &p.Name, &p.Description, &p.IsPublic, &p.Popularity,
		&created, &updated, &p.Version, &p.ItemCount, &p.Followers}, extra...)...)
	p.CreatedAt, p.UpdatedAt = fromMs(created), fromMs(updated)
	return p, err
}

// NewPlaylist is what CreatePlaylist needs.
type NewPlaylist struct {
	Name        string
	Description string
	IsPublic    bool
}

// CreatePlaylist makes an empty playlist owned by ownerID, at version 1.
func (s *Store) CreatePlaylist(ctx context.Context, ownerID int64, np NewPlaylist) (PlaylistDetail, error) {
	now := s.nowMs()
	f := Fold(np.Name)
	var id int64
	err := s.write.QueryRowContext(ctx, `INSERT INTO playlists (owner_user_id, name, description, is_public, name_key, search_text, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`, ownerID, np.Name, np.Description, np.IsPublic, f.Key, f.Text, now).Scan(&id)
	if err != nil {
		return PlaylistDetail{}, fmt.Errorf("store: create playlist: %w", err)
	}
	return s.playlistByID(ctx, s.w, id)
}

// PlaylistByID returns playlist id, public or not (callers check who may
// see it).
func (s *Store) PlaylistByID(ctx context.Context, id int64) (PlaylistDetail, error) {
	return s.playlistByID(ctx, s.read, id)
}

func (s *Store) playlistByID(ctx context.Context, db querier, id int64) (PlaylistDetail, error) {
	p, err := scanPlaylistDetail(db.QueryRowContext(ctx, `SELECT `+playlistColumns+playlistFrom+` WHERE p.id = $1`, id))
	if err != nil {
		return PlaylistDetail{}, notFound(err, "playlist", id)
	}
	return p, nil
}

// Editor is who edits a playlist and on which snapshot.
type Editor struct {
	UserID int64
	// IfVersion, when not 0, is the version the editor last saw: the edit
	// fails with ErrStale unless it is still current.
	IfVersion int64
}

// EditResult is the state after an edit.
type EditResult struct {
	Version   int64
	ItemCount int
	// Added are the items an add made, in playlist order.
	Added []PlaylistItemRef
	// Removed is how many items a removal took out.
	Removed int
}

// SnapshotID is the snapshot id after the edit.
func (r EditResult) SnapshotID() string { return SnapshotID(r.Version) }

// PlaylistItemRef is an item's id and 0-based position.
type PlaylistItemRef struct {
	ID       int64
	Position int
	SongID   int64
}

// playlistEdit is the playlist being edited, under its row lock.
type playlistEdit struct {
	id, version int64
	count       int
}

// editPlaylist runs fn in a transaction that first bumps the playlist's
// version. On PostgreSQL that UPDATE takes the row lock, so edits of one
// playlist run one at a time and each sees the ones before; SQLite
// transactions are serial anyway (BEGIN IMMEDIATE). The owner and the
// If-Match version are checked against the locked row.
func (s *Store) editPlaylist(ctx context.Context, id int64, ed Editor, fn func(tx *sql.Tx, pe *playlistEdit) error) (EditResult, error) {
	var res EditResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var owner int64
		var public bool
		pe := &playlistEdit{id: id}
		err := tx.QueryRowContext(ctx, `UPDATE playlists SET version = version + 1, updated_at = $1 WHERE id = $2
			RETURNING owner_user_id, is_public, version, item_count`, s.nowMs(), id).Scan(&owner, &public, &pe.version, &pe.count)
		if err != nil {
			return notFound(err, "playlist", id)
		}
		switch {
		case owner != ed.UserID && !public:
			return fmt.Errorf("playlist %d: %w", id, ErrNotFound)
		case owner != ed.UserID:
			return fmt.Errorf("playlist %d: %w", id, ErrNotOwner)
		case ed.IfVersion != 0 && ed.IfVersion != pe.version-1:
			return fmt.Errorf("playlist %d is at snapshot %s: %w", id, SnapshotID(pe.version-1), ErrStale)
		}
		before := pe.count
		if fn != nil {
			if err := fn(tx, pe); err != nil {
				return err
			}
		}
		if pe.count != before {
			if _, err := tx.ExecContext(ctx, `UPDATE playlists SET item_count = $1 WHERE id = $2`, pe.count, id); err != nil {
				return err
			}
		}
		res.Version, res.ItemCount = pe.version, pe.count
		return nil
	})
	if err != nil {
		return EditResult{}, fmt.Errorf("store: edit playlist: %w", err)
	}
	return res, nil
}

// PlaylistUpdate changes the fields that are not nil.
type PlaylistUpdate struct {
	Name        *string
	Description *string
	IsPublic    *bool
}

// UpdatePlaylist renames, describes or changes the visibility of playlist
// id, as an edit (new version).
func (s *Store) UpdatePlaylist(ctx context.Context, id int64, ed Editor, up PlaylistUpdate) (PlaylistDetail, error) {
	_, err := s.editPlaylist(ctx, id, ed, func(tx *sql.Tx, pe *playlistEdit) error {
		if up.Name != nil {
			f := Fold(*up.Name)
			if _, err := tx.ExecContext(ctx, `UPDATE playlists SET name = $1, name_key = $2, search_text = $3 WHERE id = $4`,
				*up.Name, f.Key, f.Text, id); err != nil {
				return err
			}
		}
		if up.Description != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE playlists SET description = $1 WHERE id = $2`, *up.Description, id); err != nil {
				return err
			}
		}
		if up.IsPublic != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE playlists SET is_public = $1 WHERE id = $2`, *up.IsPublic, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return PlaylistDetail{}, err
	}
	return s.playlistByID(ctx, s.w, id)
}

// DeletePlaylist deletes playlist id with its items and follows.
func (s *Store) DeletePlaylist(ctx context.Context, id int64, ed Editor) error {
	_, err := s.editPlaylist(ctx, id, ed, func(tx *sql.Tx, pe *playlistEdit) error {
		// Items first: with many items a cascade would do the same work
		// after the parent row is gone.
		if _, err := tx.ExecContext(ctx, `DELETE FROM playlist_items WHERE playlist_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM playlists WHERE id = $1`, id)
		pe.count = 0
		return err
	})
	return err
}

// posGap is the distance between the ordering keys of neighbouring items
// after an append or a renumbering: 32 inserts at the same spot fit
// before the playlist is renumbered.
const posGap = 1 << 32

// posLimit bounds ordering keys far from overflow; past it the playlist is
// renumbered.
const posLimit = 1 << 61

// posAt returns the ordering keys of the items at indexes i-1 and i
// (0-based; i may be 0 or the item count, where the missing neighbour is
// made up a gap of k+1 keys away).
func posBounds(ctx context.Context, tx *sql.Tx, pe *playlistEdit, i, k int) (lo, hi int64, err error) {
	span := int64(posGap) * int64(k+1)
	switch {
	case pe.count == 0:
		return 0, span, nil
	case i == 0:
		err = tx.QueryRowContext(ctx, `SELECT pos FROM playlist_items WHERE playlist_id = $1 ORDER BY pos, id LIMIT 1`, pe.id).Scan(&hi)
		return hi - span, hi, err
	case i >= pe.count:
		err = tx.QueryRowContext(ctx, `SELECT pos FROM playlist_items WHERE playlist_id = $1 ORDER BY pos DESC, id DESC LIMIT 1`, pe.id).Scan(&lo)
		return lo, lo + span, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT pos FROM playlist_items WHERE playlist_id = $1 ORDER BY pos, id LIMIT 2 OFFSET $2`, pe.id, i-1)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	var ps []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			return 0, 0, err
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if len(ps) != 2 {
		return 0, 0, fmt.Errorf("playlist %d: item count %d is off (%d neighbours at %d)", pe.id, pe.count, len(ps), i)
	}
	return ps[0], ps[1], nil
}

// newKeys returns k ordering keys for items inserted before index i,
// spread evenly between the neighbours' keys. When they have no room, or
// keys drift towards overflow, it renumbers the playlist first.
func newKeys(ctx context.Context, tx *sql.Tx, pe *playlistEdit, i, k int) ([]int64, error) {
	for attempt := 0; ; attempt++ {
		lo, hi, err := posBounds(ctx, tx, pe, i, k)
		if err != nil {
			return nil, err
		}
		step := (hi - lo) / int64(k+1)
		if step >= 1 && lo > -posLimit && hi < posLimit {
			keys := make([]int64, k)
			for j := range keys {
				keys[j] = lo + step*int64(j+1)
			}
			return keys, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("playlist %d: no ordering keys after renumbering", pe.id)
		}
		if err := renumber(ctx, tx, pe.id); err != nil {
			return nil, err
		}
	}
}

// renumber gives the items of a playlist the keys posGap, 2·posGap, … in
// their current order: one statement, run only when an insert finds no
// free key between its neighbours.
func renumber(ctx context.Context, tx *sql.Tx, playlistID int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE playlist_items SET pos = r.rn * `+strconv.Itoa(posGap)+`
		FROM (SELECT id AS item_id, ROW_NUMBER() OVER (ORDER BY pos, id) AS rn FROM playlist_items WHERE playlist_id = $1) r
		WHERE playlist_items.id = r.item_id`, playlistID)
	if err != nil {
		return fmt.Errorf("renumber playlist %d: %w", playlistID, err)
	}
	return nil
}

// missingSongs returns the ids among ids that are not ready songs.
func missingSongs(ctx context.Context, db querier, ids []int64) ([]int64, error) {
	uniq := slices.Clone(ids)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	args := make([]any, len(uniq))
	for i, id := range uniq {
		args[i] = id
	}
	ready, err := queryColumn[int64](ctx, db, `SELECT id FROM songs WHERE status = 'ready' AND id IN (`+placeholders(1, len(args))+`)`, args...)
	if err != nil {
		return nil, err
	}
	var missing []int64
	for _, id := range uniq {
		if !slices.Contains(ready, id) {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// AddPlaylistSongs inserts songIDs (ready songs; repeats allowed) into
// playlist id before the item at 0-based position, or at the end when
// position is negative. It fails with *UnknownSongsError naming the songs
// that are not ready songs, ErrOutOfRange past the end, ErrPlaylistFull
// past MaxPlaylistItems; nothing is added then.
func (s *Store) AddPlaylistSongs(ctx context.Context, id int64, ed Editor, songIDs []int64, position int) (EditResult, error) {
	if len(songIDs) == 0 || len(songIDs) > MaxPlaylistAdd {
		return EditResult{}, fmt.Errorf("store: add to playlist %d: %d songs, want 1 to %d: %w", id, len(songIDs), MaxPlaylistAdd, ErrOutOfRange)
	}
	var added []PlaylistItemRef
	res, err := s.editPlaylist(ctx, id, ed, func(tx *sql.Tx, pe *playlistEdit) error {
		if position < 0 {
			position = pe.count
		}
		if position > pe.count {
			return fmt.Errorf("position %d of %d items: %w", position, pe.count, ErrOutOfRange)
		}
		if pe.count+len(songIDs) > MaxPlaylistItems {
			return fmt.Errorf("%d items + %d: %w", pe.count, len(songIDs), ErrPlaylistFull)
		}
		missing, err := missingSongs(ctx, tx, songIDs)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return &UnknownSongsError{IDs: missing}
		}
		keys, err := newKeys(ctx, tx, pe, position, len(songIDs))
		if err != nil {
			return err
		}
		now := s.nowMs()
		args := make([]any, 0, 5*len(songIDs))
		var q strings.Builder
		q.WriteString(`INSERT INTO playlist_items (playlist_id, song_id, pos, added_by, added_at) VALUES `)
		for j, song := range songIDs {
			if j > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(len(args)+1, 5) + ")")
			args = append(args, id, song, keys[j], ed.UserID, now)
		}
		q.WriteString(` RETURNING id, pos, song_id`)
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		byKey := make(map[int64]int, len(keys))
		for j, k := range keys {
			byKey[k] = j
		}
		added = make([]PlaylistItemRef, len(keys))
		for rows.Next() {
			var ref PlaylistItemRef
			var pos int64
			if err := rows.Scan(&ref.ID, &pos, &ref.SongID); err != nil {
				return err
			}
			j := byKey[pos]
			ref.Position = position + j
			added[j] = ref
		}
		if err := rows.Err(); err != nil {
			return err
		}
		pe.count += len(songIDs)
		return nil
	})
	if err != nil {
		return EditResult{}, err
	}
	res.Added = added
	return res, nil
}

// RemovePlaylistSong removes every item of songID from playlist id
// (ErrNotFound when there is none).
func (s *Store) RemovePlaylistSong(ctx context.Context, id int64, ed Editor, songID int64) (EditResult, error) {
	return s.removeItems(ctx, id, ed, "song_id", songID)
}

// RemovePlaylistItem removes the item itemID from playlist id (ErrNotFound
// when it is not there).
func (s *Store) RemovePlaylistItem(ctx context.Context, id int64, ed Editor, itemID int64) (EditResult, error) {
	return s.removeItems(ctx, id, ed, "id", itemID)
}

// RemovePlaylistItems removes the items itemIDs from playlist id in one
// edit (ErrNotInPlaylist, and nothing removed, when one is not there).
func (s *Store) RemovePlaylistItems(ctx context.Context, id int64, ed Editor, itemIDs []int64) (EditResult, error) {
	removed := 0
	res, err := s.editPlaylist(ctx, id, ed, func(tx *sql.Tx, pe *playlistEdit) error {
		for chunk := range slices.Chunk(itemIDs, MaxPlaylistAdd) {
			args := []any{id}
			for _, v := range chunk {
				args = append(args, v)
			}
			r, err := tx.ExecContext(ctx, `DELETE FROM playlist_items WHERE playlist_id = $1 AND id IN (`+placeholders(2, len(chunk))+`)`, args...)
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			removed += int(n)
		}
		if removed != len(itemIDs) {
			return fmt.Errorf("playlist %d: %d of %d items: %w", id, removed, len(itemIDs), ErrNotInPlaylist)
		}
		pe.count -= removed
		return nil
	})
	res.Removed = removed
	return res, err
}

func (s *Store) removeItems(ctx context.Context, id int64, ed Editor, col string, v int64) (EditResult, error) {
	removed := 0
	res, err := s.editPlaylist(ctx, id, ed, func(tx *sql.Tx, pe *playlistEdit) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM playlist_items WHERE playlist_id = $1 AND `+col+` = $2`, id, v)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("playlist %d, %s %d: %w", id, col, v, ErrNotInPlaylist)
		}
		removed = int(n)
		pe.count -= removed
		return nil
	})
	res.Removed = removed
	return res, err
}

// ReorderPlaylist moves the rangeLength items starting at index
// rangeStart to before the item at index insertBefore (indexes of the
// playlist before the move; insertBefore may be the item count: the end),
// as the Spotify Web API does. Only the moved items get new keys.
func (s *Store) ReorderPlaylist(ctx context.Context, id int64, ed Editor, rangeStart, rangeLength, insertBefore int) (EditResult, error) {
	return s.editPlaylist(ctx, id, ed, func(tx *sql.Tx, pe *playlistEdit) error {
		if rangeStart < 0 || rangeLength < 1 || rangeStart+rangeLength > pe.count || insertBefore < 0 || insertBefore > pe.count {
			return fmt.Errorf("range %d+%d before %d of %d items: %w", rangeStart, rangeLength, insertBefore, pe.count, ErrOutOfRange)
		}
		if insertBefore >= rangeStart && insertBefore <= rangeStart+rangeLength {
			return nil // already there
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM playlist_items WHERE playlist_id = $1 ORDER BY pos, id LIMIT $2 OFFSET $3`,
			id, rangeLength, rangeStart)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var itemID int64
			if err := rows.Scan(&itemID); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, itemID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The neighbours at insertBefore lie outside the range, and no
		// moved item lies between them.
		keys, err := newKeys(ctx, tx, pe, insertBefore, len(ids))
		if err != nil {
			return err
		}
		for j, itemID := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE playlist_items SET pos = $1 WHERE id = $2`, keys[j], itemID); err != nil {
				return err
			}
		}
		return nil
	})
}

// PlaylistItem is a song in a playlist.
type PlaylistItem struct {
	ID       int64
	Position int
	AddedAt  time.Time
	Song     Song
}

// PlaylistItems returns a page of playlist id's items in order.
func (s *Store) PlaylistItems(ctx context.Context, id int64, limit, offset int) ([]PlaylistItem, error) {
	// The page's item ids first, from the ordering index alone: the rows
	// skipped by a deep offset cost an index step each, not a join.
	items, err := queryAll(ctx, s.read, func(r scanner) (PlaylistItem, error) {
		var it PlaylistItem
		var added int64
		so, err := scanSong(r, &it.ID, &added)
		it.Song, it.AddedAt = so, fromMs(added)
		return it, err
	}, `SELECT `+songColumns+`, i.id, i.added_at
		FROM (SELECT id FROM playlist_items WHERE playlist_id = $1 ORDER BY pos, id LIMIT $2 OFFSET $3) k
		JOIN playlist_items i ON i.id = k.id JOIN songs s ON s.id = i.song_id JOIN albums al ON al.id = s.album_id
		ORDER BY i.pos, i.id`, id, limit, offset)
	if err == nil {
		err = withCredits(ctx, s.read, items, func(it *PlaylistItem) *Song { return &it.Song })
	}
	if err != nil {
		return nil, fmt.Errorf("store: items of playlist %d: %w", id, err)
	}
	for i := range items {
		items[i].Position = offset + i
	}
	return items, nil
}

// UserPlaylists returns a page of the playlists userID owns or follows
// (public ones), most recently created or followed first, and how many
// there are.
func (s *Store) UserPlaylists(ctx context.Context, userID int64, limit, offset int) ([]PlaylistDetail, int, error) {
	const mine = `SELECT id AS pid, created_at AS added FROM playlists WHERE owner_user_id = $1
		UNION ALL
		SELECT f.playlist_id, f.created_at FROM playlist_follows f JOIN playlists q ON q.id = f.playlist_id
		WHERE f.user_id = $1 AND q.owner_user_id <> $1 AND q.is_public`
	out, total, err := userPage(ctx, s.read, userID, limit, offset, `SELECT COUNT(*) FROM (`+mine+`) x`,
		`SELECT `+playlistColumns+` FROM (`+mine+`) x
		JOIN playlists p ON p.id = x.pid JOIN users u ON u.id = p.owner_user_id
		ORDER BY x.added DESC, p.id DESC LIMIT $2 OFFSET $3`,
		func(r scanner) (PlaylistDetail, error) { return scanPlaylistDetail(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("store: playlists of user %d: %w", userID, err)
	}
	return out, total, nil
}

// FollowPlaylist makes userID follow playlist id (idempotent). Only
// public playlists and the user's own can be followed (ErrNotFound).
func (s *Store) FollowPlaylist(ctx context.Context, userID, id int64) error {
	return s.countedChange(ctx, "follow playlist", func(tx *sql.Tx) error {
		var owner int64
		var public bool
		if err := tx.QueryRowContext(ctx, `SELECT owner_user_id, is_public FROM playlists WHERE id = $1`, id).Scan(&owner, &public); err != nil || (!public && owner != userID) {
			if err == nil {
				err = sql.ErrNoRows
			}
			return notFound(err, "playlist", id)
		}
		return nil
	}, `INSERT INTO playlist_follows (user_id, playlist_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, playlist_id) DO NOTHING`, []any{userID, id, s.nowMs()},
		`UPDATE playlists SET followers = followers + 1, popularity = popularity + 1 WHERE id = $1`, id)
}

// UnfollowPlaylist makes userID stop following playlist id (idempotent).
func (s *Store) UnfollowPlaylist(ctx context.Context, userID, id int64) error {
	return s.countedChange(ctx, "unfollow playlist", nil,
		`DELETE FROM playlist_follows WHERE user_id = $1 AND playlist_id = $2`, []any{userID, id},
		`UPDATE playlists SET followers = followers - 1, popularity = CASE WHEN popularity > 0 THEN popularity - 1 ELSE 0 END WHERE id = $1`, id)
}
