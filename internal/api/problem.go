package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Problem type URIs, as ASP.NET Core (and so Acmebot) writes them.
const (
	typeBadRequest       = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
	typeNotFound         = "https://tools.ietf.org/html/rfc9110#section-15.5.5"
	typeMethodNotAllowed = "https://tools.ietf.org/html/rfc9110#section-15.5.6"
	typeContentTooLarge  = "https://tools.ietf.org/html/rfc9110#section-15.5.14"
	typeUnsupportedMedia = "https://tools.ietf.org/html/rfc9110#section-15.5.16"
	typeInternal         = "https://tools.ietf.org/html/rfc9110#section-15.6.1"
)

// validationTitle is the title of a 400 problem that carries errors.
const validationTitle = "One or more validation errors occurred."

// problemTypes maps a status to its problem type and title.
var problemTypes = map[int][2]string{
	http.StatusBadRequest:            {typeBadRequest, "Bad Request"},
	http.StatusNotFound:              {typeNotFound, "Not Found"},
	http.StatusMethodNotAllowed:      {typeMethodNotAllowed, "Method Not Allowed"},
	http.StatusRequestEntityTooLarge: {typeContentTooLarge, "Content Too Large"},
	http.StatusUnsupportedMediaType:  {typeUnsupportedMedia, "Unsupported Media Type"},
	http.StatusInternalServerError:   {typeInternal, "An error occurred while processing your request."},
}

// problem is an RFC 9457 problem document in the shape ASP.NET Core writes,
// which Acmebot clients parse.
type problem struct {
	Type    string              `json:"type"`
	Title   string              `json:"title"`
	Status  int                 `json:"status"`
	Detail  string              `json:"detail,omitempty"`
	Errors  map[string][]string `json:"errors,omitempty"`
	TraceID string              `json:"traceId"`
	// Operation is the failed operation, on GET /api/operations/{id}.
	Operation *operationView `json:"operation,omitempty"`
}

// httpError is an error a handler returns to choose the response.
type httpError struct {
	status int
	// detail is public: it is shown to the caller.
	detail string
	// errors makes the response a validation problem: PascalCase field name
	// to every message for it.
	errors map[string][]string
	// cause is private: it is logged, never shown.
	cause error
	// empty answers with no body at all (401 and 403, as Acmebot does).
	empty  bool
	header http.Header
	// operation is added to the problem document (GET /api/operations/{id}).
	operation *operationView
}

func (e *httpError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	if e.detail != "" {
		return e.detail
	}
	return http.StatusText(e.status)
}

func (e *httpError) Unwrap() error { return e.cause }

// validationError returns a 400 validation problem.
func validationError(errs map[string][]string) *httpError {
	return &httpError{status: http.StatusBadRequest, errors: errs}
}

// render writes err as the response: an *httpError as it asks, anything else
// as a 500 problem without detail. The private cause is logged once, at error
// level for 5xx and debug level otherwise.
func (s *server) render(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{status: http.StatusInternalServerError, cause: err}
	}
	ctx := r.Context()
	if he.cause != nil {
		level := slogLevelFor(he.status)
		s.logger.Log(ctx, level, "request failed",
			"method", r.Method, "path", r.URL.Path, "status", he.status,
			"error", he.cause.Error(), "trace_id", traceID(ctx))
	}
	for k, v := range he.header {
		w.Header()[k] = v
	}
	if he.empty {
		w.WriteHeader(he.status)
		return
	}
	p := problem{Status: he.status, Detail: he.detail, Errors: he.errors, Operation: he.operation,
		TraceID: "00-" + traceID(ctx) + "-" + randomHex(8) + "-00"}
	if t, ok := problemTypes[he.status]; ok {
		p.Type, p.Title = t[0], t[1]
	} else {
		p.Type, p.Title = "about:blank", http.StatusText(he.status)
	}
	if he.errors != nil {
		p.Title = validationTitle
	}
	writeJSON(w, "application/problem+json", he.status, p)
}

// writeJSON writes v as a JSON response body with status.
func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the API's own types are marshalled; none can fail.
		panic("api: marshalling response: " + err.Error())
	}
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(body.Bytes(), []byte("\n")))
}

// slogLevelFor is the level a failed request's cause is logged at.
func slogLevelFor(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelError
	}
	return slog.LevelDebug
}
