package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Environment variables the client commands read.
const (
	envURL    = "CERTKEEPER_URL"
	envAPIKey = "CERTKEEPER_API_KEY"
	envToken  = "CERTKEEPER_TOKEN"
)

// defaultServer is where the client looks when neither --server nor
// CERTKEEPER_URL says otherwise: the address `certkeeper dev` listens on.
const defaultServer = "http://127.0.0.1:8080"

// client talks to a certkeeper server's API.
type client struct {
	base   string
	apiKey string
	// token is an OIDC bearer token, sent when there is no API key.
	token string
	http  *http.Client
}

// clientFlags registers --server, --api-key and --json on fs and returns a
// function that builds the client after parsing.
func clientFlags(fs *flag.FlagSet, getenv func(string) string) (build func() (*client, error), jsonOut *bool) {
	server := fs.String("server", "", "certkeeper URL; also "+envURL+" (default "+defaultServer+")")
	key := fs.String("api-key", "", "API key; also "+envAPIKey)
	token := fs.String("token", "", "OIDC bearer token, used when no API key is given; also "+envToken)
	jsonOut = fs.Bool("json", false, "print machine-readable JSON")
	return func() (*client, error) {
		base := firstNonEmpty(*server, getenv(envURL), defaultServer)
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &usageError{fmt.Errorf("the server URL %q is not an http(s) URL", base)}
		}
		return &client{
			base:   strings.TrimRight(base, "/"),
			apiKey: firstNonEmpty(*key, getenv(envAPIKey)),
			token:  firstNonEmpty(*token, getenv(envToken)),
			http:   &http.Client{Timeout: 2 * time.Minute},
		}, nil
	}, jsonOut
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// apiError is a non-success answer, reduced to what a person can act on.
type apiError struct {
	Status int
	// Title and Detail come from the problem document when there is one.
	Title  string
	Detail string
	// Errors are a validation problem's messages by field.
	Errors map[string][]string
	// Operation is the failed operation a /api/operations problem carries.
	Operation *operationView
}

func (e *apiError) Error() string {
	switch {
	case e.Status == http.StatusUnauthorized:
		return "the server refused the API key (401): set --api-key or " + envAPIKey
	case e.Status == http.StatusForbidden:
		return "the API key lacks the role this needs (403)"
	case len(e.Errors) > 0:
		var parts []string
		for field, msgs := range e.Errors {
			parts = append(parts, field+": "+strings.Join(msgs, " "))
		}
		return strings.Join(sortedStrings(parts), "; ")
	case e.Detail != "":
		return e.Detail
	case e.Title != "":
		return fmt.Sprintf("%s (%d)", e.Title, e.Status)
	}
	return fmt.Sprintf("the server answered %d %s", e.Status, http.StatusText(e.Status))
}

// do sends a request and returns the response when its status is one of
// want; any other status becomes an *apiError. The caller closes the body.
func (c *client) do(ctx context.Context, method, path string, body any, want ...int) (*http.Response, error) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding request: %w", err)
		}
		reader = bytes.NewReader(b)
	}
	target := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		target = c.base + path
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.apiKey != "" {
		req.Header.Set("X-Functions-Key", c.apiKey)
	} else if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, reachError(c.base, err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readProblem(resp)
}

// reachError says in one line why the server could not be reached.
func reachError(base string, err error) error {
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot reach certkeeper at %s: %v (is it running? set --server or %s)", base, opErr.Err, envURL)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return fmt.Errorf("cannot talk to certkeeper at %s: %v", base, err)
}

func readProblem(resp *http.Response) error {
	e := &apiError{Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var p struct {
		Title     string              `json:"title"`
		Detail    string              `json:"detail"`
		Errors    map[string][]string `json:"errors"`
		Operation *operationView      `json:"operation"`
	}
	if json.Unmarshal(data, &p) == nil {
		e.Title, e.Detail, e.Errors, e.Operation = p.Title, p.Detail, p.Errors, p.Operation
	}
	return e
}

// decode reads a JSON response body into v and closes it.
func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("reading the server's answer: %w", err)
	}
	return nil
}

// isTerminal reports whether f is a terminal (for the spinner).
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
