package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// NameKey is the form of an artist name that must be unique: compatibility
// composed (NFKC, so fullwidth "ＡＢＢＡ" is "ABBA"), case folded,
// default-ignorable code points removed (zero-width spaces and joiners,
// soft hyphens, bidi controls, variation selectors, Hangul fillers, …),
// NFKC again, and white space collapsed to single spaces. Two names with
// the same key look alike enough to be taken for one another, so
// "Sigur Rós", "SIGUR RÓS" and "Sigur\u200b Rós" are one name; "Sigur
// Ros" (no accent) is another. A name whose key is "" has nothing
// visible in it.
//
// Unicode TR39 confusable skeletons (Cyrillic "А" for Latin "A") are not
// applied: no maintained Go implementation of the confusables data exists.
func NameKey(name string) string {
	s := norm.NFKC.String(name)
	s = cases.Fold().String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(defaultIgnorable, r) {
			return -1
		}
		return r
	}, s)
	s = norm.NFKC.String(s)
	return strings.Join(strings.Fields(s), " ")
}

// defaultIgnorable is Unicode's Default_Ignorable_Code_Point property
// (DerivedCoreProperties.txt), assigned and reserved.
var defaultIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x00ad, Hi: 0x00ad, Stride: 1},
		{Lo: 0x034f, Hi: 0x034f, Stride: 1},
		{Lo: 0x061c, Hi: 0x061c, Stride: 1},
		{Lo: 0x115f, Hi: 0x1160, Stride: 1},
		{Lo: 0x17b4, Hi: 0x17b5, Stride: 1},
		{Lo: 0x180b, Hi: 0x180f, Stride: 1},
		{Lo: 0x200b, Hi: 0x200f, Stride: 1},
		{Lo: 0x202a, Hi: 0x202e, Stride: 1},
		{Lo: 0x2060, Hi: 0x206f, Stride: 1},
		{Lo: 0x3164, Hi: 0x3164, Stride: 1},
		{Lo: 0xfe00, Hi: 0xfe0f, Stride: 1},
		{Lo: 0xfeff, Hi: 0xfeff, Stride: 1},
		{Lo: 0xffa0, Hi: 0xffa0, Stride: 1},
		{Lo: 0xfff0, Hi: 0xfff8, Stride: 1},
	},
	R32: []unicode.Range32{
		{Lo: 0x1bca0, Hi: 0x1bca3, Stride: 1},
		{Lo: 0x1d173, Hi: 0x1d17a, Stride: 1},
		{Lo: 0xe0000, Hi: 0xe0fff, Stride: 1},
	},
}

// fillNameKeys sets artists.name_unique for the rows that have none
// (made before migration 0007), oldest first: the oldest
// artist keeps a contested name, and a later one with the same key gets a
// placeholder that matches no name (its display name stays as it was).
func fillNameKeys(ctx context.Context, tx *sql.Tx) error {
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, name FROM artists WHERE name_unique IS NULL ORDER BY id LIMIT 1000`)
		if err != nil {
			return err
		}
		var ids []int64
		var names []string
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return err
			}
			ids, names = append(ids, id), append(names, name)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		for i, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE artists SET name_unique = CASE
				WHEN EXISTS (SELECT 1 FROM artists WHERE name_unique = $1) THEN $2 ELSE $1 END WHERE id = $3`,
				NameKey(names[i]), takenNameKey(id), id); err != nil {
				return err
			}
		}
	}
}

// takenNameKey is the name_unique of artist id whose name's key another
// artist held first, or of a made-up artist of Seed: it matches no
// NameKey (none starts with a control character).
func takenNameKey(id int64) string { return "\x01" + strconv.FormatInt(id, 10) }
