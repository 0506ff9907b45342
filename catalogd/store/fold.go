package store

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Folded is a name prepared for search.
type Folded struct {
	// Key is the folded words joined by single spaces: compared with a
	// folded query for exact and prefix matches ("AC/DC" → "acdc").
	Key string
	// Text is what the full-text index sees: Key's words plus the pieces of
	// words that had punctuation inside ("AC/DC" → "acdc ac dc"), so both
	// "acdc" and "ac dc" find it.
	Text string
}

// Fold folds s for search: compatibility decomposition (NFKD), diacritics
// dropped, a few letters without a decomposition spelled out (ß → ss,
// ø → o, æ → ae, …), lower case, and every character that is not a letter
// or a digit removed. Words are separated by white space and by
// , ; ( ) [ ] { } " |; other punctuation inside a word (AC/DC, Jay-Z,
// will.i.am, Don't) joins its pieces and the pieces are indexed too.
func Fold(s string) Folded {
	var key, text strings.Builder
	for _, field := range strings.FieldsFunc(s, isWordBreak) {
		joined, parts := foldWord(field)
		if joined == "" {
			continue
		}
		if key.Len() > 0 {
			key.WriteByte(' ')
			text.WriteByte(' ')
		}
		key.WriteString(joined)
		text.WriteString(joined)
		if len(parts) > 1 {
			for _, p := range parts {
				text.WriteByte(' ')
				text.WriteString(p)
			}
		}
	}
	return Folded{Key: key.String(), Text: text.String()}
}

// FoldJoin folds several names into one search text (e.g. the artist names
// and album title a song is also found by).
func FoldJoin(names ...string) string {
	var parts []string
	for _, n := range names {
		if t := Fold(n).Text; t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " ")
}

func isWordBreak(r rune) bool {
	if unicode.IsSpace(r) {
		return true
	}
	switch r {
	case ',', ';', '(', ')', '[', ']', '{', '}', '"', '|', '\u201c', '\u201d':
		return true
	}
	return false
}

// foldWord folds one word and returns it joined and in its alphanumeric
// pieces.
func foldWord(w string) (joined string, parts []string) {
	var b, part strings.Builder
	flush := func() {
		if part.Len() > 0 {
			parts = append(parts, part.String())
			part.Reset()
		}
	}
	for _, r := range norm.NFKD.String(w) {
		if unicode.Is(unicode.Mn, r) {
			continue // combining mark: the diacritic of the letter before
		}
		r = unicode.ToLower(r)
		if sp, ok := spelled[r]; ok {
			b.WriteString(sp)
			part.WriteString(sp)
			continue
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			part.WriteRune(r)
			continue
		}
		flush()
	}
	flush()
	return b.String(), parts
}

// spelled lists lower-case letters that NFKD does not decompose, with the
// ASCII a listener would type for them.
var spelled = map[rune]string{
	'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'đ': "d", 'ð': "d",
	'þ': "th", 'ł': "l", 'ı': "i", 'ħ': "h", 'ŧ': "t", 'ŋ': "n",
}

// MaxQueryWords caps how many words of a query are searched for.
const MaxQueryWords = 8

// Query is a user's search text, folded.
type Query struct {
	// Words are the folded words, at most MaxQueryWords.
	Words []string
	// Key is Words joined by single spaces.
	Key string
	// PrefixLast: the last word is still being typed and matches as a
	// prefix (the text did not end with a space).
	PrefixLast bool
}

// ParseQuery folds a user's search text the way names are folded. Every
// character that is not a letter or a digit is dropped, so no user input
// can reach FTS5 or tsquery syntax; the expressions built from a Query
// quote every word anyway.
func ParseQuery(q string) Query {
	f := Fold(q)
	var words []string
	if f.Key != "" {
		words = strings.Split(f.Key, " ")
	}
	if len(words) > MaxQueryWords {
		words = words[:MaxQueryWords]
	}
	last, _ := utf8.DecodeLastRuneInString(q)
	return Query{
		Words:      words,
		Key:        strings.Join(words, " "),
		PrefixLast: len(words) > 0 && !unicode.IsSpace(last),
	}
}

// Empty reports whether the query has nothing to search for.
func (q Query) Empty() bool { return len(q.Words) == 0 }

// Short reports whether the query is one or two characters long: too short
// for the word index, so it matches the start of names instead.
func (q Query) Short() bool { return utf8.RuneCountInString(q.Key) <= 2 }

// FTS5 returns the query as an FTS5 MATCH expression: every word a quoted
// string, all required, the last one a prefix when PrefixLast.
func (q Query) FTS5() string {
	var b strings.Builder
	for i, w := range q.Words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(w, `"`, `""`))
		b.WriteByte('"')
		if i == len(q.Words)-1 && q.PrefixLast {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// TSQuery returns the query as a PostgreSQL to_tsquery('simple', …)
// expression: quoted lexemes joined by &, the last one a prefix (:*) when
// PrefixLast.
func (q Query) TSQuery() string { return q.TSQueryWeighted("") }

// TSQueryWeighted is TSQuery with every lexeme restricted to the given
// weights (e.g. "A": words of the name).
func (q Query) TSQueryWeighted(weights string) string {
	var b strings.Builder
	for i, w := range q.Words {
		if i > 0 {
			b.WriteString(" & ")
		}
		star := i == len(q.Words)-1 && q.PrefixLast
		writeLexeme(&b, w, star, weights)
	}
	return b.String()
}

// TSQueryWords is TSQuery with the last word, typed as a prefix, replaced
// by the words it stands for (at least one): 'broken' & ('heart' |
// 'hearts'). It matches what TSQuery does when words are all the lexemes
// that start with the last word.
func (q Query) TSQueryWords(words []string) string {
	var b strings.Builder
	for _, w := range q.Words[:len(q.Words)-1] {
		writeLexeme(&b, w, false, "")
		b.WriteString(" & ")
	}
	b.WriteByte('(')
	for i, w := range words {
		if i > 0 {
			b.WriteString(" | ")
		}
		writeLexeme(&b, w, false, "")
	}
	b.WriteByte(')')
	return b.String()
}

// writeLexeme writes w quoted as a tsquery lexeme, a prefix when star,
// restricted to weights when not "".
func writeLexeme(b *strings.Builder, w string, star bool, weights string) {
	b.WriteByte('\'')
	w = strings.ReplaceAll(w, `\`, `\\`)
	b.WriteString(strings.ReplaceAll(w, `'`, `''`))
	b.WriteByte('\'')
	if star || weights != "" {
		b.WriteByte(':')
		if star {
			b.WriteByte('*')
		}
		b.WriteString(weights)
	}
}
