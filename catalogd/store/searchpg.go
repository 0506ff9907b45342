package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Search on PostgreSQL: popular first, from the rank index.
//
// GIN indexes know which rows hold a word but not their rank_key, so a
// search that reads them fetches every match from the table, and the
// songs table at 1M songs is six times shared_buffers: each match was a
// random page, most of them not cached (a 1,001-row count of "midnight"
// took 25–50 ms; the 2,001-row probe of "golden" 25–90 ms). The rank_key
// indexes include search_tsv instead (migration 0016), so walking one in
// rank order checks each row's words in the index itself (an index-only
// scan) and stops when the page is full.
//
// pgSearch first walks the walkRows most popular rows. That sample
// answers a common term outright (its first page is in it) and estimates
// how many rows match a rarer one: a term estimated at no more than
// MaxSearchTotal matches is read from its GIN index, which also counts it
// exactly; a more common one continues the walk past the sample. Totals
// are exact up to MaxSearchTotal, except for a term whose estimate is
// above it, which is reported as capped without being counted.

// walkRows is how many rows of the rank index pgSearch reads first: about
// 1 ms, and enough for the first page of a term in one row of 100.
const walkRows = 2000

// walkSample is what the first walk of the rank index found: the rows
// that match every word, in rank order, split by tier.
type walkSample struct {
	names, rest   []int64 // first rank keys of tier 1 (names) and tier 2
	nNames, nRest int     // how many of each the walk found
	walked        int     // rows walked (all listable rows when < walkRows)
	last          int64   // the smallest rank key walked
	listable      float64 // the planner's count of listable rows (-1: unknown)
}

// whole reports whether the walk read every listable row.
func (w walkSample) whole() bool { return w.walked < walkRows }

// estimate is how many rows of the whole table match, judging by the
// found of the walk's rows that did (0 when the table size is unknown).
func (w walkSample) estimate(found int) float64 {
	if w.listable <= 0 || w.walked == 0 {
		return 0
	}
	return float64(found) * max(w.listable, float64(w.walked)) / float64(w.walked)
}

// pgSearch returns the rank keys of the first need results in ranking
// order (see search) and the total: exact up to MaxSearchTotal+1, or
// MaxSearchTotal+1 for a term estimated to match more.
func (s *Store) pgSearch(ctx context.Context, spec searchSpec, q Query, all, names matcher, need int) ([]int64, int, error) {
	keys, err := s.exactKeys(ctx, spec, q, need)
	if err != nil {
		return nil, 0, err
	}
	needNames := need + len(keys)
	w, err := s.walkSample(ctx, spec, all, names, needNames, need)
	if err != nil {
		return nil, 0, err
	}
	t := &pgTerms{spec: spec, q: q, all: all, names: names}
	total := w.nNames + w.nRest
	if !w.whole() {
		if w.estimate(total) > MaxSearchTotal {
			total = MaxSearchTotal + 1
		} else {
			probed, n, err := s.probeTiers(ctx, t, needNames)
			if err != nil || n <= MaxSearchTotal {
				return appendNew(keys, probed), n, err
			}
			total = n
		}
	}
	if len(keys) >= need {
		// Tier 0 fills the page ("hallelujah": 759 songs have that very
		// name); reading the names tier would only drop what it found,
		// and a walk for it went through 50,000 index rows.
		return keys, total, nil
	}
	tier, err := s.pgTier(ctx, t, namesTier, w, w.names, w.nNames, needNames)
	if err != nil {
		return nil, 0, err
	}
	keys = appendNew(keys, tier)
	if len(keys) < need && hasRest(spec, q) {
		tier, err := s.pgTier(ctx, t, restTier, w, w.rest, w.nRest, need-len(keys))
		if err != nil {
			return nil, 0, err
		}
		keys = append(keys, tier...)
	}
	return keys, total, nil
}

// pgTerms are one search's matchers: as matchers made them, for walks of
// the rank index, and for GIN reads with a prefix typed last expanded
// into the words it stands for (expandPrefix), looked up on the first
// GIN read. A query the walk answers never looks its prefix up.
type pgTerms struct {
	spec             searchSpec
	q                Query
	all, names       matcher
	ginAll, ginNames matcher
	looked           bool
}

// tierOf picks the matcher of one read from a search's all and names.
type tierOf func(all, names matcher) matcher

// allTier, namesTier and restTier pick every word anywhere, every word in
// the name (tier 1), and anywhere but not all in the name (tier 2).
func allTier(all, _ matcher) matcher      { return all }
func namesTier(_, names matcher) matcher  { return names }
func restTier(all, names matcher) matcher { return all.except(names) }

// walk returns tier's matcher for a walk of the rank index.
func (t *pgTerms) walk(tier tierOf) matcher { return tier(t.all, t.names) }

// gin returns tier's matcher for a GIN read.
func (t *pgTerms) gin(ctx context.Context, s *Store, tier tierOf) (matcher, error) {
	if !t.looked {
		t.looked = true
		t.ginAll, t.ginNames = t.all, t.names
		words, err := s.expandPrefix(ctx, t.spec, t.q)
		if err != nil {
			return matcher{}, err
		}
		if words != nil {
			expr := t.q.TSQueryWords(words)
			t.ginAll.expr, t.ginNames.expr = expr, expr
		}
	}
	return tier(t.ginAll, t.ginNames), nil
}

// maxPrefixWords is how many words a prefix typed last may stand for and
// still be expanded into them for a GIN read. In the seeded 1M-song
// catalog "love" stands for 172 words, "heart" for 88, "rain" for 30.
const maxPrefixWords = 256

// expandPrefix returns the words of spec's table (the search_words
// lexicon, migration 0017) that q's last word, typed as a prefix, stands
// for, in byte order; nil when the query is left as it is: one word, no
// prefix, a last word that is not plain ASCII letters and digits (its
// lexeme might not be the word itself), no word, or more than
// maxPrefixWords of them.
//
// GIN reads a prefix in a tsquery as one bitmap of every row holding any
// word it starts, built whole before it is intersected with the other
// words: 'broken' & 'heart':* built one of ~120,000 songs at 1M for 483
// matches (40 ms). The same query with the words spelled out, 'broken'
// & ('heart' | 'hearts' | …), lets GIN step through the posting lists
// of "broken" and skip ahead in the others. A single word is not
// expanded: its bitmap is its matches either way. At 1M songs this took
// the songs p99 from 10–16 ms to 7.3–7.9 ms (docs/performance.md).
func (s *Store) expandPrefix(ctx context.Context, spec searchSpec, q Query) ([]string, error) {
	if !q.PrefixLast || len(q.Words) < 2 {
		return nil, nil
	}
	p := q.Words[len(q.Words)-1]
	for i := 0; i < len(p); i++ {
		if c := p[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return nil, nil
		}
	}
	// ASCII: the words starting with p are those from p up to p with its
	// last byte one higher (C collation compares bytes).
	upper := p[:len(p)-1] + string(rune(p[len(p)-1]+1))
	words, err := queryColumn[string](ctx, s.read, `SELECT word FROM search_words
		WHERE kind = $1 AND word >= $2 AND word < $3 ORDER BY word LIMIT $4`, spec.table, p, upper, maxPrefixWords+1)
	if err != nil || len(words) == 0 || len(words) > maxPrefixWords {
		return nil, err
	}
	return words, nil
}

// walkSample walks the walkRows most popular listable rows of spec's
// table in its rank index and returns those matching all, the first
// nNames of them that match names and the first nRest that do not.
func (s *Store) walkSample(ctx context.Context, spec searchSpec, all, names matcher, nNames, nRest int) (walkSample, error) {
	var b queryBuilder
	a := spec.alias
	q := `WITH w AS MATERIALIZED (SELECT ` + a + `.rank_key, ` + rowCheck(a, all, &b) + ` AS am, ` + rowCheck(a, names, &b) + ` AS nm
		FROM ` + spec.table + ` ` + a + visibleWhere(spec, "") + ` ORDER BY ` + a + `.rank_key DESC LIMIT ` + b.arg(walkRows) + `)
	(SELECT rank_key, nm, 0::bigint, 0::bigint, 0::bigint, 0::float8 FROM w WHERE am AND nm ORDER BY rank_key DESC LIMIT ` + b.arg(nNames) + `)
	UNION ALL
	(SELECT rank_key, nm, 0, 0, 0, 0 FROM w WHERE am AND NOT nm ORDER BY rank_key DESC LIMIT ` + b.arg(nRest) + `)
	UNION ALL
	SELECT COALESCE(min(rank_key), 0), NULL, count(*), count(*) FILTER (WHERE am AND nm), count(*) FILTER (WHERE am AND NOT nm),
		(SELECT reltuples FROM pg_class WHERE oid = '` + spec.walkIndex + `'::regclass)::float8 FROM w`
	rows, err := s.read.QueryContext(ctx, q, b.args...)
	if err != nil {
		return walkSample{}, err
	}
	defer rows.Close()
	var w walkSample
	for rows.Next() {
		var k, walked, nn, nr int64
		var nm sql.NullBool
		var listable float64
		if err := rows.Scan(&k, &nm, &walked, &nn, &nr, &listable); err != nil {
			return w, err
		}
		switch {
		case !nm.Valid:
			w.last, w.walked, w.nNames, w.nRest, w.listable = k, int(walked), int(nn), int(nr), listable
		case nm.Bool:
			w.names = append(w.names, k)
		default:
			w.rest = append(w.rest, k)
		}
	}
	return w, rows.Err()
}

// probeTiers reads the rows matching all from its GIN index, up to
// MaxSearchTotal+1 of them, and returns the first n in ranking order
// (names matches first) and how many there were.
func (s *Store) probeTiers(ctx context.Context, t *pgTerms, n int) ([]int64, int, error) {
	all, err := t.gin(ctx, s, allTier)
	if err != nil {
		return nil, 0, err
	}
	var b queryBuilder
	a := t.spec.alias
	inner := s.matchQuery(t.spec, all, &b, a+".rank_key, "+rowCheck(a, t.names, &b)+" AS nm") +
		` LIMIT ` + b.arg(MaxSearchTotal+1)
	return s.probe(ctx, `WITH m AS MATERIALIZED (`+inner+`) SELECT rank_key, count(*) OVER () FROM m
		ORDER BY nm DESC, rank_key DESC LIMIT `+b.arg(n), b.args)
}

// pgTier returns the first n rank keys of the rows matching tier, given
// the found of them the walk w found (its first ones, at most n): the
// walk's when they are enough or all there are; else from tier's GIN
// index when w estimates at most MaxSearchTotal matches (and they were);
// else the walk goes on past w.
func (s *Store) pgTier(ctx context.Context, t *pgTerms, tier tierOf, w walkSample, first []int64, found, n int) ([]int64, error) {
	if len(first) >= n || w.whole() {
		return first[:min(n, len(first))], nil
	}
	if w.estimate(found) <= MaxSearchTotal {
		m, err := t.gin(ctx, s, tier)
		if err != nil {
			return nil, err
		}
		var b queryBuilder
		inner := s.matchQuery(t.spec, m, &b, t.spec.alias+".rank_key") + ` LIMIT ` + b.arg(MaxSearchTotal+1)
		keys, total, err := s.probe(ctx, `WITH m AS MATERIALIZED (`+inner+`) SELECT rank_key, count(*) OVER () FROM m
			ORDER BY rank_key DESC LIMIT `+b.arg(n), b.args)
		if err != nil || total <= MaxSearchTotal {
			return keys, err
		}
	}
	more, err := s.walkAfter(ctx, t.spec, t.walk(tier), w.last, n-len(first))
	return append(first, more...), err
}

// probe runs q, whose rows are a rank key and a count, and returns the
// keys and the count (0 without rows).
func (s *Store) probe(ctx context.Context, q string, args []any) ([]int64, int, error) {
	total := 0
	keys, err := queryAll(ctx, s.read, func(r scanner) (int64, error) {
		var k int64
		err := r.Scan(&k, &total)
		return k, err
	}, q, args...)
	return keys, total, err
}

// walkAfter walks the rank index of spec's table from below rank key
// last and returns the first n rank keys of rows matching m. The inner
// ORDER BY … LIMIT keeps the planner on the rank index: it cannot
// estimate prefix queries, and a GIN read would fetch every match.
func (s *Store) walkAfter(ctx context.Context, spec searchSpec, m matcher, last int64, n int) ([]int64, error) {
	var b queryBuilder
	a := spec.alias
	q := `SELECT rank_key FROM (SELECT ` + a + `.rank_key, ` + a + `.search_tsv FROM ` + spec.table + ` ` + a +
		visibleWhere(spec, a+".rank_key < "+b.arg(last)) + ` ORDER BY ` + a + `.rank_key DESC LIMIT ` + b.arg(int64(1)<<62) + `) ` + a +
		` WHERE ` + rowCheck(a, m, &b) + ` LIMIT ` + b.arg(n)
	return queryColumn[int64](ctx, s.read, q, b.args...)
}

// rowCheck is m as a condition on alias.search_tsv alone (see matcher).
func rowCheck(alias string, m matcher, b *queryBuilder) string {
	c := fmt.Sprintf("%s.search_tsv @@ %s", alias, tsQuery(b, m.row))
	if m.notRow != "" {
		c += fmt.Sprintf(" AND NOT %s.search_tsv @@ %s", alias, tsQuery(b, m.notRow))
	}
	return c
}

// tsQuery is the tsquery of text as a parameter, parsed once per
// statement. to_tsquery is STABLE, not IMMUTABLE: a custom plan folds
// to_tsquery('simple', $1) into a constant, but the generic plan that
// PostgreSQL switches a prepared statement to after five executions
// (the driver prepares every statement) calls it for every row it
// checks. A walk of 35,000 index rows for "cosmic love" took 40 ms
// instead of 10. A scalar subquery is an InitPlan, run once.
func tsQuery(b *queryBuilder, text string) string {
	return "(SELECT to_tsquery('simple', " + b.arg(text) + "))"
}

// visibleWhere is " WHERE cond AND spec.visible", or less of it.
func visibleWhere(spec searchSpec, cond string) string {
	switch {
	case cond != "" && spec.visible != "":
		return " WHERE " + cond + " AND " + spec.visible
	case cond != "":
		return " WHERE " + cond
	case spec.visible != "":
		return " WHERE " + spec.visible
	}
	return ""
}
