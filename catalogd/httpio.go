package catalogd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a request body into dst strictly: the media type must
// be application/json, the body at most limit bytes (413), valid UTF-8, one
// JSON object with no unknown fields and nothing after it. Errors are
// apiErrors that name the offending field where there is one.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return newError(kindUnsupportedMedia, "unsupported_media_type", "Send the body as application/json.")
		}
	} else {
		return newError(kindUnsupportedMedia, "unsupported_media_type", "Send the body as application/json (Content-Type header missing).")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(kindTooLarge, "body_too_large", "The body is larger than %d bytes.", limit)
		}
		return &apiError{kind: kindInvalid, code: "unreadable_body", detail: "The body could not be read.", cause: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(kindInvalid, "empty_body", "The body is empty; send a JSON object.")
	}
	if !utf8.Valid(body) {
		return newError(kindInvalid, "invalid_utf8", "The body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(kindInvalid, "malformed_json", "The body has data after the JSON object.")
	}
	return nil
}

// jsonError turns an encoding/json error into an apiError naming the field.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &syn):
		return newError(kindInvalid, "malformed_json", "The body is not valid JSON (at byte %d).", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return newError(kindInvalid, "malformed_json", "The body must be a JSON object.")
		}
		return invalidField(typ.Field, "invalid_type", "%s must be %s, not %s.", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return newError(kindInvalid, "malformed_json", "The body is truncated JSON.")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if f, uerr := strconv.Unquote(name); uerr == nil {
			name = f
		}
		return invalidField(name, "unknown_field", "Unknown field %q.", name)
	}
	return &apiError{kind: kindInvalid, code: "malformed_json", detail: "The body is not valid JSON.", cause: err}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

// optional is a JSON field that distinguishes absent (set false), null
// (null true) and a value, for PATCH bodies.
type optional[T any] struct {
	set, null bool
	v         T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.set = true
	if string(b) == "null" {
		o.null = true
		return nil
	}
	return json.Unmarshal(b, &o.v)
}

// pathIDAndBody returns the path value id and decodes the JSON body (at
// most Config.MaxBodyBytes) into v.
func (s *Server) pathIDAndBody(w http.ResponseWriter, r *http.Request, v any) (int64, error) {
	id, err := pathID(r)
	if err != nil {
		return 0, err
	}
	return id, decodeJSON(w, r, s.cfg.MaxBodyBytes, v)
}

// patch checks the fields of a PATCH body in turn; the first refusal
// sticks and the later fields are not checked.
type patch struct{ err *apiError }

// patchField returns the new value of o (the zero value when null) once
// check passes, nil when o is absent or a field was refused.
func patchField[T any](p *patch, o optional[T], check func(T) *apiError) *T {
	if !o.set || p.err != nil {
		return nil
	}
	if p.err = check(o.v); p.err != nil {
		return nil
	}
	return &o.v
}

// name returns the new value of a name-like field, which may not be null:
// checked by check, then trimmed.
func (p *patch) name(field string, o optional[string], check func(string) *apiError) *string {
	if o.set && o.null && p.err == nil {
		p.err = invalidField(field, "required", "%s must not be null.", field)
	}
	v := patchField(p, o, check)
	if v == nil {
		return nil
	}
	trimmed := strings.TrimSpace(*v)
	return &trimmed
}

// query checks the query string of a request: only the named parameters,
// each at most once, valid UTF-8. It returns the values.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newError(kindInvalid, "malformed_query", "The query string is malformed.")
	}
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !utf8.ValidString(name) {
			return nil, newError(kindInvalid, "invalid_utf8", "A query parameter name is not valid UTF-8.")
		}
		if !known {
			return nil, invalidField(name, "unknown_parameter", "Unknown query parameter %q.", name)
		}
		if len(vs) > 1 {
			return nil, invalidField(name, "repeated_parameter", "Query parameter %q is given more than once.", name)
		}
		if !utf8.ValidString(vs[0]) {
			return nil, invalidField(name, "invalid_utf8", "Query parameter %q is not valid UTF-8.", name)
		}
	}
	return q, nil
}

// intParam parses query parameter name as a decimal integer in [lo, hi],
// or returns def when it is absent.
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	s := v[0]
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' || (len(s) > 1 && s[0] == '0') || n < lo || n > hi {
		return 0, invalidField(name, "out_of_range", "%s must be an integer from %d to %d.", name, lo, hi)
	}
	return n, nil
}

// pathID parses the {id} path value: a positive decimal integer.
func pathID(r *http.Request) (int64, error) {
	return pathInt(r, "id")
}

// checkText validates a user-supplied name or text: at most maxRunes
// characters (and 4 bytes per character), no control characters (except
// newlines and tabs when multiline), and, when required, not blank.
func checkText(field, s string, required bool, maxRunes int, multiline bool) *apiError {
	if required && strings.TrimSpace(s) == "" {
		return invalidField(field, "required", "%s must not be empty.", field)
	}
	if len(s) > 4*maxRunes || utf8.RuneCountInString(s) > maxRunes {
		return invalidField(field, "too_long", "%s must be at most %d characters.", field, maxRunes)
	}
	for _, r := range s {
		if r == utf8.RuneError || (unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r'))) {
			return invalidField(field, "invalid_characters", "%s must not contain control characters.", field)
		}
		if unicode.Is(unicode.Bidi_Control, r) {
			return invalidField(field, "invalid_characters", "%s must not contain bidirectional control characters.", field)
		}
	}
	return nil
}

// checkURL validates an optional absolute http(s) URL of at most 2048
// bytes; "" is allowed (no image).
func checkURL(field, s string) *apiError {
	if s == "" {
		return nil
	}
	if len(s) > 2048 {
		return invalidField(field, "too_long", "%s must be at most 2048 bytes.", field)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return invalidField(field, "invalid_url", "%s must be an absolute http or https URL.", field)
	}
	if e := checkText(field, s, false, 2048, false); e != nil {
		return e
	}
	return nil
}

// checkDate validates an optional YYYY-MM-DD date.
func checkDate(field, s string) *apiError {
	if s == "" {
		return nil
	}
	if len(s) != 10 {
		return invalidField(field, "invalid_date", "%s must be a date like 2024-12-31.", field)
	}
	y, err1 := strconv.Atoi(s[0:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:10])
	if err1 != nil || err2 != nil || err3 != nil || s[4] != '-' || s[7] != '-' || y < 1000 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return invalidField(field, "invalid_date", "%s must be a date like 2024-12-31.", field)
	}
	return nil
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// checkCountry validates an ISO 3166-1 alpha-2 code (two capital letters)
// or "".
func checkCountry(s string) *apiError {
	if s == "" {
		return nil
	}
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return invalidField("country", "invalid_country", "country must be an ISO 3166-1 alpha-2 code like SE.")
	}
	return nil
}

// nextLink returns the URL of the page after [offset, offset+limit) of
// total items, keeping the request's other parameters, or nil at the end.
func nextLink(r *http.Request, limit, offset, total int, extra url.Values) *string {
	if offset+limit >= total {
		return nil
	}
	q := r.URL.Query()
	for k, v := range extra {
		q[k] = v
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("offset", strconv.Itoa(offset+limit))
	s := r.URL.Path + "?" + q.Encode()
	return &s
}

// page is the pagination envelope of every list.
type page[T any] struct {
	Items  []T     `json:"items"`
	Limit  int     `json:"limit"`
	Offset int     `json:"offset"`
	Total  int     `json:"total"`
	Next   *string `json:"next"`
	// TotalCapped: search counted MaxSearchTotal matches and stopped;
	// there are more (only search sets it).
	TotalCapped bool `json:"total_capped,omitempty"`
}

func newPage[T any](r *http.Request, items []T, limit, offset, total int, extra url.Values) page[T] {
	if items == nil {
		items = []T{}
	}
	return page[T]{Items: items, Limit: limit, Offset: offset, Total: total, Next: nextLink(r, limit, offset, total, extra)}
}
