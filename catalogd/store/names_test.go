package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"riff/catalogd/store/storetest"
)

func TestNameKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Sigur Rós", "sigur rós"},
		{"SIGUR  RÓS ", "sigur rós"},
		{"Sigur\u200b Ro\u0301s", "sigur rós"},
		{"\uff33\uff49\uff47\uff55\uff52 R\u00f3s", "sigur rós"},
		{"\u00adA\u2060B\ufe0fC\U000E0041", "abc"},
		{"Straße", "strasse"},
		{"\u200b\u3164 \ufeff", ""},
		{"Sigur Ros", "sigur ros"},
	} {
		if got := NameKey(tc.in); got != tc.want {
			t.Errorf("NameKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestArtistNamesMigration: artists made before migration 0007 get their
// name keys when the store opens; the oldest keeps a contested name, and
// new artists cannot take any kept one.
func TestArtistNamesMigration(t *testing.T) {
	run := func(t *testing.T, dsn, driver string) {
		ctx := context.Background()
		d := map[string]Dialect{"sqlite": SQLite, "pgx": Postgres}[driver]
		ms, err := migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.version >= 7 {
				break
			}
			if _, err := db.ExecContext(ctx, m.sql); err != nil {
				t.Fatalf("migration %d: %v", m.version, err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations VALUES ($1, $2, 0)`, m.version, m.name); err != nil {
				t.Fatal(err)
			}
		}
		s := openUpgraded(t, db, dsn,
			`INSERT INTO users (email, email_key, password_hash, display_name, created_at, updated_at) VALUES ('a@x', 'a@x', 'h', 'A', 0, 0)`,
			`INSERT INTO artists (owner_user_id, name, name_key, search_text, created_at, updated_at) VALUES (1, 'Sigur Rós', 'sigur ros', 'sigur ros', 0, 0)`,
			`INSERT INTO artists (owner_user_id, name, name_key, search_text, created_at, updated_at) VALUES (1, 'SIGUR RÓS', 'sigur ros', 'sigur ros', 0, 0)`,
			`INSERT INTO artists (owner_user_id, name, name_key, search_text, created_at, updated_at) VALUES (1, 'Múm', 'mum', 'mum', 0, 0)`,
		)
		keys := map[int64]string{}
		rows, err := s.r.QueryContext(ctx, `SELECT id, name_unique FROM artists ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			var k string
			if err := rows.Scan(&id, &k); err != nil {
				t.Fatal(err)
			}
			keys[id] = k
		}
		rows.Close()
		if keys[1] != "sigur rós" || keys[2] != takenNameKey(2) || keys[3] != "múm" {
			t.Errorf("keys after upgrade = %v", keys)
		}
		for _, name := range []string{"sigur rós", "MÚM"} {
			if _, err := s.CreateArtist(ctx, 1, NewArtist{Name: name}); !errors.Is(err, ErrConflict) {
				t.Errorf("CreateArtist(%q) = %v, want ErrConflict", name, err)
			}
		}
		// The artist that lost the key cannot take the kept name by a rename.
		name := "SIGUR RÓS"
		if _, err := s.UpdateArtist(ctx, 2, ArtistUpdate{Name: &name}); !errors.Is(err, ErrConflict) {
			t.Errorf("renaming the duplicate to the kept name = %v, want ErrConflict", err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		run(t, "file:"+path, "sqlite")
	})
	t.Run("postgres", func(t *testing.T) { run(t, storetest.PostgresDSN(t), "pgx") })
}
