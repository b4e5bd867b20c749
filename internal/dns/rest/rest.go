// Package rest holds the small JSON-over-HTTPS client that certkeeper's DNS
// provider packages share: one request at a time, credentials set by the
// provider, the provider's own error text kept, and no secret in an error.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultTimeout bounds one request when Client.HTTP is nil.
const DefaultTimeout = 30 * time.Second

// maxBody bounds how much of an answer is read; maxErrorText how much of an
// error answer is quoted.
const (
	maxBody      = 32 << 20
	maxErrorText = 512
)

// Client sends JSON requests to one API. The zero value is not usable: set
// BaseURL. A Client is safe for concurrent use when its functions are.
type Client struct {
	// BaseURL is the API root; request paths are appended to its path.
	BaseURL *url.URL
	// HTTP sends the requests; nil means a client with DefaultTimeout.
	HTTP *http.Client
	// Authorize sets credentials on req; body is the encoded request body
	// (nil when there is none), for APIs that sign it.
	Authorize func(req *http.Request, body []byte) error
	// ErrorMessage extracts the provider's own words from an error answer;
	// nil or "" means the answer's text.
	ErrorMessage func(status int, body []byte) string
	// ContentType of request bodies; default application/json.
	ContentType string
}

// Bearer is an Authorize function that sends token as an OAuth bearer token.
func Bearer(token secret.String) func(*http.Request, []byte) error {
	return func(r *http.Request, _ []byte) error {
		r.Header.Set("Authorization", "Bearer "+token.Reveal())
		return nil
	}
}

// Error is a non-2xx answer.
type Error struct {
	Method string
	// URL is the request URL without query and user information.
	URL        string
	StatusCode int
	// Message is the provider's explanation, trimmed to 512 bytes.
	Message string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		msg += " " + t
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// IsStatus reports whether err is an *Error with one of the status codes.
func IsStatus(err error, codes ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.StatusCode == c {
			return true
		}
	}
	return false
}

// Path joins segments into a request path, escaping each one.
func Path(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// ParseBase parses a base URL for a Client: absolute http or https.
func ParseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Do sends method path?query with in encoded as JSON (none when in is nil)
// and decodes a 2xx answer into out (ignored when out is nil or the answer
// empty). A non-2xx answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if raw, ok := in.([]byte); ok {
			body = raw
		} else if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
	}
	data, err := c.Raw(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, c.shown(path), err)
	}
	return nil
}

// Raw sends body as it is and returns the body of a 2xx answer. path is
// escaped, as Path returns it.
func (c *Client) Raw(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	// path is escaped (Path builds it so): Path gets its decoded form and
	// RawPath the escaped one, or url.URL would escape the escapes again.
	decoded, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, c.shown(path), err)
	}
	u := *c.BaseURL
	u.Path = c.BaseURL.Path + decoded
	u.RawPath = c.BaseURL.EscapedPath() + path
	u.RawQuery = query.Encode()
	shown := c.shown(path)
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, shown, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		ct := c.ContentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.Authorize != nil {
		if err := c.Authorize(req, body); err != nil {
			return nil, fmt.Errorf("authorizing %s %s: %w", method, shown, err)
		}
	}
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL may carry credentials in the query
		}
		return nil, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, shown, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := ""
		if c.ErrorMessage != nil {
			msg = c.ErrorMessage(resp.StatusCode, data)
		}
		if msg == "" {
			msg = strings.TrimSpace(string(data))
		}
		if len(msg) > maxErrorText {
			msg = msg[:maxErrorText] + "…"
		}
		return nil, &Error{Method: method, URL: shown, StatusCode: resp.StatusCode, Message: msg}
	}
	return data, nil
}

func (c *Client) shown(path string) string {
	u := *c.BaseURL
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	return u.String() + path
}

// Unquote removes one pair of surrounding double quotes from a TXT value as
// APIs that store presentation format return it, and joins the
// character-strings of a value split into several quoted parts.
func Unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	var b strings.Builder
	in := false
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case ch == '\\' && in && i+1 < len(v):
			i++
			b.WriteByte(v[i])
		case ch == '"':
			in = !in
		case in:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// Quote returns v in presentation format, one quoted character-string.
// Challenge values are base64url and need no escaping; quotes and
// backslashes are escaped all the same.
func Quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
