package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// SeedOptions size a synthetic catalog.
type SeedOptions struct {
	// Songs is how many songs to add (albums and artists scale with it:
	// about 11 songs per album, 4 albums per artist, Zipf-distributed).
	Songs int
	// Seed makes the catalog reproducible.
	Seed uint64
	// TrendingSongs is how many songs get four weeks of hourly plays
	// (default Songs/50, at most 20,000; -1 for none).
	TrendingSongs int
	// Now anchors the play history; default the store clock.
	Now time.Time
	// Progress, when set, is called after every batch with the songs
	// written so far.
	Progress func(done int)
}

// SeedStats reports what Seed wrote.
type SeedStats struct {
	Users, Artists, Albums, Songs, Credits, Playlists, PlayRows int
}

// seedBatch is how many rows one INSERT statement carries.
const seedBatch = 200

// Seed fills the store with a synthetic catalog: names with diacritics and
// punctuation, Zipf-distributed genres, popularity and artist sizes, a few
// percent of songs not ready, some featured artists, and a play history
// for trending. Rows are written with multi-row INSERTs in transactions of
// about 20,000 songs. On SQLite the full-text triggers are suspended during
// the load and the indexes rebuilt at the end (restored even on error); it
// runs ANALYZE last. Seed may run on a non-empty store: ids continue after
// the largest existing ones. It is meant for an otherwise idle database.
func (s *Store) Seed(ctx context.Context, opts SeedOptions) (st SeedStats, err error) {
	if opts.Songs <= 0 {
		return st, nil
	}
	if opts.Now.IsZero() {
		opts.Now = s.now()
	}
	if opts.TrendingSongs == 0 {
		opts.TrendingSongs = min(opts.Songs/50, 20000)
	}
	g := newGenerator(opts.Seed)
	base, err := s.maxIDs(ctx)
	if err != nil {
		return st, err
	}
	if s.dialect == SQLite {
		restore, err := s.suspendFTS(ctx)
		if err != nil {
			return st, err
		}
		defer func() {
			if rerr := restore(context.WithoutCancel(ctx)); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	nArtists := max(1, opts.Songs/44)
	now := s.nowMs()

	// Artists and their owners.
	artistNames := make([]string, nArtists)
	for i := range artistNames {
		artistNames[i] = g.artistName()
	}
	users := newBulk(s.dialect, "users", []string{"id", "email", "email_key", "password_hash", "display_name", "country", "tier", "role",
		"preferences", "created_at", "updated_at"})
	artists := newBulk(s.dialect, "artists", []string{"id", "owner_user_id", "name", "bio", "image_url", "popularity", "name_key",
		"search_text", "name_unique", "created_at", "updated_at"})
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for i, name := range artistNames {
			uid, aid := base.users+int64(i)+1, base.artists+int64(i)+1
			email := fmt.Sprintf("artist%d@seed.riff.invalid", uid)
			// "!" is no PHC string: these accounts cannot log in.
			users.add(uid, email, email, "!", name, g.country(), TierFree, RoleArtist, "{}", now, now)
			f := Fold(name)
			// Made-up artists reserve no names (the generator repeats
			// names, and real ones may be among them).
			artists.add(aid, uid, name, "", "", g.popularity(), f.Key, f.Text, takenNameKey(aid), now, now)
		}
		if err := users.flush(ctx, tx); err != nil {
			return err
		}
		return artists.flush(ctx, tx)
	})
	if err != nil {
		return st, fmt.Errorf("store: seed artists: %w", err)
	}
	st.Users, st.Artists = nArtists, nArtists

	// Albums and songs, one transaction per ~20,000 songs.
	albums := newBulk(s.dialect, "albums", []string{"id", "artist_id", "title", "type", "release_date", "cover_url", "popularity",
		"name_key", "search_text", "search_extra", "created_at", "updated_at"})
	songs := newBulk(s.dialect, "songs", []string{"id", "album_id", "primary_artist_id", "title", "track_number", "duration_ms",
		"genre", "explicit", "status", "current_version", "popularity", "name_key", "search_text", "search_extra",
		"created_at", "updated_at"})
	credits := newBulk(s.dialect, "song_artists", []string{"song_id", "artist_id", "role", "position"})
	artistZipf := rand.NewZipf(g.r, 1.1, 8, uint64(nArtists-1))
	var ready []int64
	for st.Songs < opts.Songs {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for end := min(opts.Songs, st.Songs+20000); st.Songs < end; {
				ai := int(artistZipf.Uint64())
				artistID := base.artists + int64(ai) + 1
				albumID := base.albums + int64(st.Albums) + 1
				kind, tracks := g.albumShape()
				tracks = min(tracks, opts.Songs-st.Songs)
				title := g.title()
				songTitles := make([]string, tracks)
				for i := range songTitles {
					songTitles[i] = g.title()
				}
				if kind == AlbumTypeSingle {
					title = songTitles[0] // a single is named after its song
				}
				f := Fold(title)
				albums.add(albumID, artistID, title, kind, g.releaseDate(), "", g.popularity(),
					f.Key, f.Text, Fold(artistNames[ai]).Text, now, now)
				st.Albums++
				for t, songTitle := range songTitles {
					songID := base.songs + int64(st.Songs) + 1
					names := []string{artistNames[ai]}
					featured := -1
					if g.r.IntN(10) == 0 { // a featured artist
						if fi := g.r.IntN(nArtists); fi != ai {
							featured = fi
							names = append(names, artistNames[fi])
							if g.r.IntN(2) == 0 {
								songTitle += " (feat. " + artistNames[fi] + ")"
							}
						}
					}
					status, version := g.status()
					if status == StatusReady {
						ready = append(ready, songID)
					}
					sf := Fold(songTitle)
					songs.add(songID, albumID, artistID, songTitle, t+1, g.durationMS(), g.genre(),
						g.r.IntN(7) == 0, status, version, g.popularity(), sf.Key, sf.Text, songExtra(names, title), now, now)
					credits.add(songID, artistID, RolePrimary, 0)
					st.Credits++
					if featured >= 0 {
						credits.add(songID, base.artists+int64(featured)+1, RoleFeatured, 1)
						st.Credits++
					}
					st.Songs++
				}
			}
			for _, b := range []*bulk{albums, songs, credits} {
				if err := b.flush(ctx, tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("store: seed songs: %w", err)
		}
		if opts.Progress != nil {
			opts.Progress(st.Songs)
		}
	}

	// Playlists of the seed users, most of them public.
	if n := max(1, opts.Songs/20); n > 0 {
		pls := newBulk(s.dialect, "playlists", []string{"owner_user_id", "name", "description", "is_public", "popularity", "name_key",
			"search_text", "created_at", "updated_at"})
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for range n {
				name := g.playlistName()
				f := Fold(name)
				owner := base.users + int64(g.r.IntN(nArtists)) + 1
				pls.add(owner, name, "", g.r.IntN(10) < 7, g.popularity(), f.Key, f.Text, now, now)
				st.Playlists++
			}
			return pls.flush(ctx, tx)
		})
		if err != nil {
			return st, fmt.Errorf("store: seed playlists: %w", err)
		}
	}

	// Four weeks of hourly plays for a sample of ready songs (the rollup
	// keeps history beyond the trending window).
	if n := min(opts.TrendingSongs, len(ready)); n > 0 {
		plays := newBulk(s.dialect, "song_plays_hourly", []string{"song_id", "hour", "plays"})
		nowHour := HourOf(opts.Now)
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for _, i := range g.r.Perm(len(ready))[:n] {
				heat := g.popularity()
				for h := range int64(28 * 24) {
					if g.r.IntN(8) != 0 { // about one hour in eight had plays
						continue
					}
					p := 1 + int64(float64(heat)*g.r.Float64()/50)
					plays.add(ready[i], nowHour-h, p)
					st.PlayRows++
				}
			}
			return plays.flush(ctx, tx)
		})
		if err != nil {
			return st, fmt.Errorf("store: seed plays: %w", err)
		}
	}
	if s.dialect == Postgres {
		if err := s.resetSequences(ctx); err != nil {
			return st, err
		}
	}
	return st, nil
}

type maxIDs struct{ users, artists, albums, songs int64 }

func (s *Store) maxIDs(ctx context.Context) (maxIDs, error) {
	var m maxIDs
	err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(MAX(id), 0) FROM users), (SELECT COALESCE(MAX(id), 0) FROM artists),
		(SELECT COALESCE(MAX(id), 0) FROM albums), (SELECT COALESCE(MAX(id), 0) FROM songs)`).
		Scan(&m.users, &m.artists, &m.albums, &m.songs)
	if err != nil {
		return m, fmt.Errorf("store: seed: %w", err)
	}
	return m, nil
}

// suspendFTS drops the SQLite full-text triggers for a bulk load. The
// returned function rebuilds the indexes and recreates the triggers.
func (s *Store) suspendFTS(ctx context.Context) (restore func(context.Context) error, err error) {
	rows, err := s.write.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '%\_fts\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: seed: %w", err)
	}
	var names, ddl []string
	for rows.Next() {
		var n, q string
		if err := rows.Scan(&n, &q); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: seed: %w", err)
		}
		names, ddl = append(names, n), append(ddl, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: seed: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `DROP TRIGGER `+n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: seed: suspend full-text triggers: %w", err)
	}
	return func(ctx context.Context) error {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for _, t := range []string{"songs_fts", "artists_fts", "albums_fts", "playlists_fts"} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO `+t+`(`+t+`) VALUES ('rebuild')`); err != nil {
					return fmt.Errorf("rebuild %s: %w", t, err)
				}
			}
			for _, q := range ddl {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: seed: restore full-text indexes: %w", err)
		}
		return nil
	}, nil
}

// resetSequences moves PostgreSQL identity sequences past the ids Seed
// chose itself.
func (s *Store) resetSequences(ctx context.Context) error {
	for _, t := range []string{"users", "artists", "albums", "songs"} {
		if _, err := s.write.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t+`', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM `+t+`), false)`); err != nil {
			return fmt.Errorf("store: seed: sequence of %s: %w", t, err)
		}
	}
	return nil
}

// bulk buffers the rows of one table for a transaction and writes them
// with multi-row INSERTs of seedBatch rows, the full-batch statement
// prepared once. SQLite gets anonymous ? parameters: it resolves each
// numbered $N parameter by a linear search, quadratic in a statement with
// thousands of them.
type bulk struct {
	dialect Dialect
	table   string
	cols    []string
	rows    []any
	n       int
}

func newBulk(d Dialect, table string, cols []string) *bulk {
	return &bulk{dialect: d, table: table, cols: cols}
}

func (b *bulk) sql(n int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO " + b.table + " (" + strings.Join(b.cols, ", ") + ") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(b.cols)), ", ") + ")"
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		if b.dialect == SQLite {
			q.WriteString(row)
		} else {
			q.WriteString("(" + placeholders(i*len(b.cols)+1, len(b.cols)) + ")")
		}
	}
	return q.String()
}

// add buffers one row.
func (b *bulk) add(vals ...any) {
	b.rows = append(b.rows, vals...)
	b.n++
}

// flush writes the buffered rows in tx.
func (b *bulk) flush(ctx context.Context, tx *sql.Tx) error {
	width := len(b.cols)
	rows := b.rows
	b.rows, b.n = b.rows[:0], 0
	if len(rows) >= seedBatch*width {
		st, err := tx.PrepareContext(ctx, b.sql(seedBatch))
		if err != nil {
			return fmt.Errorf("%s: %w", b.table, err)
		}
		defer st.Close()
		for len(rows) >= seedBatch*width {
			if _, err := st.ExecContext(ctx, rows[:seedBatch*width]...); err != nil {
				return fmt.Errorf("%s: %w", b.table, err)
			}
			rows = rows[seedBatch*width:]
		}
	}
	if len(rows) > 0 {
		if _, err := tx.ExecContext(ctx, b.sql(len(rows)/width), rows...); err != nil {
			return fmt.Errorf("%s: %w", b.table, err)
		}
	}
	return nil
}

// generator makes plausible catalog metadata.
type generator struct {
	r        *rand.Rand
	wordZipf *rand.Zipf
	genreZ   *rand.Zipf
}

func newGenerator(seed uint64) *generator {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &generator{
		r:        r,
		wordZipf: rand.NewZipf(r, 1.07, 2, uint64(len(seedWords)-1)),
		genreZ:   rand.NewZipf(r, 1.3, 1, uint64(len(seedGenres)-1)),
	}
}

func (g *generator) word() string { return seedWords[g.wordZipf.Uint64()] }

func (g *generator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

// initial is the first letter of w in upper case.
func initial(w string) string {
	for _, r := range w {
		return strings.ToUpper(string(r))
	}
	return ""
}

func titleCase(w string) string {
	for i, r := range w {
		return strings.ToUpper(string(r)) + w[i+len(string(r)):]
	}
	return w
}

// title makes a song or album title of one to five words, sometimes with
// punctuation, a version note or a non-English phrase.
func (g *generator) title() string {
	switch g.r.IntN(40) {
	case 0:
		return g.pick(seedPhrases)
	case 1:
		return titleCase(g.word()) + "!"
	case 2:
		return titleCase(g.word()) + "?"
	case 3:
		return fmt.Sprintf("%d %s", 1+g.r.IntN(99), titleCase(g.word()))
	}
	n := 1 + g.r.IntN(3)
	if g.r.IntN(4) == 0 {
		n += 2
	}
	words := make([]string, n)
	for i := range words {
		words[i] = titleCase(g.word())
	}
	t := strings.Join(words, " ")
	switch g.r.IntN(30) {
	case 0:
		t += " (Remix)"
	case 1:
		t += " - Live"
	case 2:
		t += " (Acoustic Version)"
	case 3:
		t = "Don't " + t
	case 4:
		t += ", Pt. 2"
	}
	return t
}

// artistName makes a band or performer name.
func (g *generator) artistName() string {
	switch g.r.IntN(14) {
	case 0, 1:
		return g.pick(seedFirst) + " " + g.pick(seedLast)
	case 2:
		return "The " + titleCase(g.word()) + "s"
	case 3:
		return initial(g.word()) + "/" + initial(g.word()) + initial(g.word())
	case 4:
		return g.pick(seedFirst) + " & the " + titleCase(g.word()) + "s"
	case 5:
		return "DJ " + titleCase(g.word())
	case 6:
		return g.pick(seedFirst)
	case 7:
		return titleCase(g.word()) + " " + titleCase(g.word())
	case 8:
		return g.word() + "." + strings.ToLower(initial(g.word())) + "." + g.word()
	case 9:
		return titleCase(g.word()) + "-" + initial(g.word())
	case 10:
		return g.pick(seedFirst) + " " + g.pick(seedLast) + " Trio"
	case 11:
		return titleCase(g.word()) + "'s " + titleCase(g.word())
	default:
		return g.pick(seedFirst) + " " + g.pick(seedLast)
	}
}

// playlistName makes a playlist name.
func (g *generator) playlistName() string {
	switch g.r.IntN(6) {
	case 0:
		return titleCase(g.word()) + " Vibes"
	case 1:
		return "My " + titleCase(g.genre()) + " Favourites"
	case 2:
		return titleCase(g.word()) + " & " + titleCase(g.word())
	case 3:
		return "Road Trip " + fmt.Sprint(1990+g.r.IntN(36))
	case 4:
		return titleCase(g.genre()) + " for " + titleCase(g.word()) + "s"
	default:
		return g.title()
	}
}

func (g *generator) albumShape() (kind string, tracks int) {
	switch x := g.r.IntN(100); {
	case x < 40:
		return AlbumTypeSingle, 1 + g.r.IntN(2)
	case x < 55:
		return AlbumTypeEP, 4 + g.r.IntN(3)
	default:
		return AlbumTypeAlbum, 8 + g.r.IntN(11)
	}
}

func (g *generator) genre() string { return seedGenres[g.genreZ.Uint64()] }

// popularity is heavy-tailed: most songs have a handful of plays, a few
// have millions.
func (g *generator) popularity() int64 {
	return int64(math.Min(5e7, 10*math.Pow(1-g.r.Float64(), -1.6)))
}

func (g *generator) durationMS() int64 {
	return int64(math.Max(30, math.Min(900, 215+55*g.r.NormFloat64()))) * 1000
}

func (g *generator) releaseDate() string {
	return fmt.Sprintf("%04d-%02d-%02d", 1960+g.r.IntN(66), 1+g.r.IntN(12), 1+g.r.IntN(28))
}

func (g *generator) country() string { return g.pick(seedCountries) }

func (g *generator) status() (string, int) {
	switch x := g.r.IntN(1000); {
	case x < 10:
		return StatusProcessing, 0
	case x < 15:
		return StatusFailed, 0
	case x < 20:
		return StatusTakenDown, 1
	default:
		return StatusReady, 1
	}
}

var (
	seedGenres = []string{"pop", "rock", "hip-hop", "electronic", "r&b", "latin", "indie", "country", "jazz", "metal",
		"classical", "folk", "soul", "reggae", "k-pop", "blues", "punk", "ambient", "funk", "gospel", "afrobeat", "bossa nova"}
	seedCountries = []string{"US", "GB", "DE", "FR", "SE", "BR", "MX", "JP", "KR", "NG", "IN", "ES", "IT", "NL", "IS", "NO", "CA", "AU"}
	seedFirst     = []string{"Zoë", "José", "Björk", "Beyoncé", "Ana", "Léa", "Søren", "Chloé", "Mía", "Jürgen", "Renée",
		"Noël", "Raphaël", "Ólafur", "Dvořák", "Siobhán", "Łukasz", "Ağca", "Nuño", "Amélie", "Max", "Kim", "Taylor",
		"Sam", "Alex", "Jordan", "Luis", "Aisha", "Chen", "Ravi", "Yuki", "Omar", "Ines", "Hannah", "Marcus", "Lena"}
	seedLast = []string{"Müller", "González", "Sigurðsson", "Ångström", "Brontë", "O'Connor", "García", "Núñez", "Kowalski",
		"Smith", "Johnson", "Nakamura", "Okafor", "Dubois", "Rossi", "Jensen", "Petrov", "Kim", "Silva", "Novák", "Øster",
		"MacLeod", "Fernández", "Wójcik", "Çelik", "Nguyen", "Park", "Haddad", "Walsh", "Schröder"}
	seedPhrases = []string{"Déjà Vu", "Señorita", "Café del Mar", "Mañana", "Über Alles", "Ça Plane Pour Moi", "Jalapeño",
		"Smörgåsbord", "Fiancée", "Naïve", "Cliché", "Résumé", "Piñata", "Hyvää Yötä", "Þú Ert", "Vámonos", "Ñandú",
		"AC/DC Tribute", "Rock 'n' Roll", "Hey, Jude!", "What's Up?", "99 Luftballons", "P.S. I Love You", "R.E.S.P.E.C.T.",
		"Hallelujah", "København", "São Paulo", "Zürich", "Kraków", "Malmö"}
	seedWords = []string{"love", "night", "heart", "baby", "time", "life", "light", "dream", "fire", "world", "day", "home",
		"girl", "boy", "dance", "summer", "rain", "blue", "gold", "star", "moon", "sun", "road", "city", "river", "soul",
		"wild", "young", "sweet", "crazy", "little", "forever", "tonight", "midnight", "paradise", "heaven", "angel",
		"shadow", "ocean", "wave", "storm", "thunder", "sky", "island", "desert", "highway", "diamond", "silver", "velvet",
		"echo", "ghost", "mirror", "window", "garden", "flower", "rose", "honey", "sugar", "cherry", "lemon", "coffee",
		"whiskey", "wine", "neon", "electric", "cosmic", "magic", "mystery", "secret", "promise", "memory", "yesterday",
		"tomorrow", "morning", "evening", "winter", "autumn", "spring", "northern", "southern", "western", "eastern",
		"broken", "golden", "lonely", "happy", "sad", "strange", "perfect", "beautiful", "dangerous", "lucky", "holy",
		"savage", "gentle", "brave", "free", "alive", "lost", "found", "running", "falling", "flying", "burning", "shining",
		"dancing", "singing", "waiting", "dreaming", "calling", "coming", "going", "back", "again", "away", "together",
		"alone", "everything", "nothing", "somebody", "nobody", "everybody", "people", "stranger", "lover", "friend",
		"brother", "sister", "mother", "father", "king", "queen", "prince", "rebel", "hero", "outlaw", "gypsy", "cowboy",
		"sailor", "soldier", "dreamer", "machine", "engine", "radio", "television", "telephone", "satellite", "rocket",
		"planet", "galaxy", "universe", "atlas", "horizon", "canyon", "mountain", "valley", "forest", "jungle", "kingdom",
		"empire", "castle", "tower", "bridge", "street", "avenue", "boulevard", "station", "harbor", "motel", "hotel",
		"café", "fiesta", "corazón", "amor", "noche", "vida", "sueño", "cielo", "luna", "mariposa", "señor", "niño",
		"mädchen", "liebe", "nacht", "schön", "träume", "fräulein", "über", "ámame", "été", "rêve", "cœur", "soirée",
		"jalapeño", "piñata", "año", "mañana", "être", "forêt", "château", "ångest", "sjö", "hjärta", "kärlek", "ø",
		"velkommen", "søster", "ljós", "hjarta", "tíminn", "ψυχή", "любовь", "ночь", "東京", "夜", "사랑", "노래",
		"zero", "one", "two", "three", "seven", "hundred", "thousand", "million", "first", "last", "final", "only",
		"real", "true", "fake", "loud", "quiet", "slow", "fast", "high", "low", "deep", "cold", "hot", "warm", "dark",
		"bright", "black", "white", "red", "green", "purple", "pink", "orange", "yellow", "grey", "crimson", "scarlet",
		"emerald", "sapphire", "ruby", "crystal", "glass", "stone", "steel", "iron", "paper", "plastic", "satin", "silk",
		"lace", "leather", "denim", "cotton", "feather", "wing", "bird", "wolf", "tiger", "lion", "horse", "dragon",
		"snake", "butterfly", "bee", "fox", "bear", "eagle", "raven", "dove", "swan", "whale", "shark", "dolphin",
		"groove", "rhythm", "melody", "harmony", "symphony", "ballad", "anthem", "lullaby", "serenade", "requiem",
		"boogie", "blues", "funk", "disco", "techno", "house", "trance", "jazz", "swing", "soul", "rock", "roll",
		"hip", "hop", "beat", "bass", "drum", "guitar", "piano", "violin", "trumpet", "saxophone", "organ", "choir"}
)
