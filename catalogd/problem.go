package catalogd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"riff/catalogd/store"
	"riff/internal/obs"
)

// kind is the class of an API error. statusOf maps kinds to HTTP status
// codes; it is the only place that does.
type kind int

const (
	kindInternal kind = iota
	kindInvalid
	kindUnauthorized
	kindForbidden
	kindNotFound
	kindMethodNotAllowed
	kindConflict
	kindTooLarge
	kindUnsupportedMedia
	kindRateLimited
	kindUnavailable
	kindPreconditionFailed
	kindUnprocessable
)

func statusOf(k kind) int {
	switch k {
	case kindInvalid:
		return http.StatusBadRequest
	case kindUnauthorized:
		return http.StatusUnauthorized
	case kindForbidden:
		return http.StatusForbidden
	case kindNotFound:
		return http.StatusNotFound
	case kindMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case kindConflict:
		return http.StatusConflict
	case kindTooLarge:
		return http.StatusRequestEntityTooLarge
	case kindUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case kindRateLimited:
		return http.StatusTooManyRequests
	case kindUnavailable:
		return http.StatusServiceUnavailable
	case kindPreconditionFailed:
		return http.StatusPreconditionFailed
	case kindUnprocessable:
		return http.StatusUnprocessableEntity
	}
	return http.StatusInternalServerError
}

// apiError is an error with what the client may know about it: a kind, a
// stable code, a human detail and, for validation errors, the offending
// field. cause is logged, never sent.
type apiError struct {
	kind       kind
	code       string
	detail     string
	field      string
	retryAfter time.Duration
	cause      error
}

func (e *apiError) Error() string {
	s := e.code + ": " + e.detail
	if e.field != "" {
		s += " (field " + e.field + ")"
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *apiError) Unwrap() error { return e.cause }

// invalidField reports a validation error on field.
func invalidField(field, code, format string, args ...any) *apiError {
	return &apiError{kind: kindInvalid, code: code, field: field, detail: fmt.Sprintf(format, args...)}
}

func newError(k kind, code, format string, args ...any) *apiError {
	return &apiError{kind: k, code: code, detail: fmt.Sprintf(format, args...)}
}

// databaseRetryAfter is the Retry-After of database_unavailable: about
// what a primary restart or a failover takes.
const databaseRetryAfter = 5 * time.Second

// problem is an RFC 9457 problem details document.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	Field     string `json:"field,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// statusClientClosed is recorded for a request its client cancelled.
const statusClientClosed = 499

// problemTypePrefix starts the type URI of every problem; the code
// completes it.
const problemTypePrefix = "urn:riff:problem:"

// writeError answers err as problem+json. Errors that are not apiErrors
// become 404/409 (store kinds), 503 (timeouts, cancellation) or 500; their
// text is logged with the request id and never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away (a reload, a cancelled fetch): nobody reads
		// the answer, and it is no fault of ours. 499, as nginx logs it.
		s.obs.CountError("client_closed")
		s.log.DebugContext(r.Context(), "client closed the request", "method", r.Method, "path", r.URL.Path)
		w.WriteHeader(statusClientClosed)
		return
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, store.ErrNotFound):
		ae = &apiError{kind: kindNotFound, code: "not_found", detail: "No such resource.", cause: err}
	case errors.Is(err, store.ErrConflict):
		ae = &apiError{kind: kindConflict, code: "conflict", detail: "The request conflicts with the current state.", cause: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		ae = &apiError{kind: kindUnavailable, code: "unavailable", detail: "The service is busy; try again.", cause: err}
	case store.Unavailable(err):
		// The primary is down (or restarting): writes wait for it; reads
		// of replica-safe data still work from the replicas.
		ae = &apiError{kind: kindUnavailable, code: "database_unavailable", detail: "The database is unavailable; try again shortly.",
			retryAfter: databaseRetryAfter, cause: err}
	default:
		ae = &apiError{kind: kindInternal, code: "internal", detail: "Something went wrong on our side.", cause: err}
	}
	status := statusOf(ae.kind)
	s.obs.CountError(ae.code)
	switch {
	case status >= 500:
		s.log.ErrorContext(r.Context(), "request failed", "code", ae.code, "err", err, "method", r.Method, "path", r.URL.Path)
	case ae.cause != nil:
		s.log.DebugContext(r.Context(), "request refused", "code", ae.code, "err", ae.cause)
	}
	h := w.Header()
	if ae.kind == kindUnauthorized {
		v := `Bearer realm="riff"`
		if ae.code == "invalid_token" || ae.code == "token_expired" {
			v += `, error="invalid_token"`
		}
		h.Set("WWW-Authenticate", v)
	}
	if ae.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{
		Type:      problemTypePrefix + ae.code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    ae.detail,
		Code:      ae.code,
		Field:     ae.field,
		Instance:  r.URL.Path,
		RequestID: obs.RequestID(r.Context()),
	})
}
