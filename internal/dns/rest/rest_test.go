package rest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

func TestClientDo(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer s3cret":
			http.Error(w, `{"message":"bad token"}`, http.StatusUnauthorized)
		case r.URL.EscapedPath() == "/v2/zones/a%2Fb/records" && r.Method == http.MethodPost:
			var in map[string]string
			if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&in) != nil || in["name"] != "x" {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"id":"7","q":"` + r.URL.Query().Get("q") + `"}`))
		case r.URL.Path == "/v2/long":
			http.Error(w, strings.Repeat("é", 600), http.StatusInternalServerError)
		default:
			http.Error(w, `{"message":"no such thing"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	base, err := rest.ParseBase(srv.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	base.User = url.UserPassword("user", "pw-in-url")
	c := &rest.Client{BaseURL: base, HTTP: srv.Client(), Authorize: rest.Bearer(secret.String("s3cret")),
		ErrorMessage: func(_ int, body []byte) string {
			var e struct{ Message string }
			_ = json.Unmarshal(body, &e)
			return e.Message
		}}

	var out struct{ ID, Q string }
	if err := c.Do(t.Context(), http.MethodPost, rest.Path("zones", "a/b", "records"), url.Values{"q": {"1 2"}},
		map[string]string{"name": "x"}, &out); err != nil || out.ID != "7" || out.Q != "1 2" {
		t.Fatalf("Do = %v, %+v; want the decoded answer", err, out)
	}

	err = c.Do(t.Context(), http.MethodGet, "/missing", nil, nil, nil)
	var re *rest.Error
	if !errors.As(err, &re) || !rest.IsStatus(err, http.StatusNotFound) || re.Message != "no such thing" {
		t.Fatalf("Do on a 404 = %v; want *Error with the provider's message", err)
	}
	if strings.Contains(err.Error(), "pw-in-url") || !strings.Contains(err.Error(), "HTTP 404 Not Found: no such thing") {
		t.Errorf("error text %q: want the status and message and no credentials", err)
	}
	if rest.IsStatus(err, http.StatusConflict) || rest.IsStatus(errors.New("x"), http.StatusNotFound) {
		t.Error("IsStatus matched the wrong status or a foreign error")
	}

	_, err = c.Raw(t.Context(), http.MethodGet, "/long", nil, nil)
	if !errors.As(err, &re) || len(re.Message) > 520 || !strings.HasSuffix(re.Message, "…") {
		t.Errorf("long error message kept %d bytes: %v", len(re.Message), err)
	}

	bad := &rest.Client{BaseURL: base, HTTP: srv.Client(), Authorize: rest.Bearer(secret.String("wrong"))}
	if err := bad.Do(t.Context(), http.MethodGet, "/zones", nil, nil, nil); !rest.IsStatus(err, http.StatusUnauthorized) ||
		strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong token = %v; want 401 without the token", err)
	}
}

func TestParseBase(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "ftp://x", "/relative", "https://", "::"} {
		if _, err := rest.ParseBase(raw); err == nil {
			t.Errorf("ParseBase(%q) accepted it", raw)
		}
	}
	u, err := rest.ParseBase("https://api.example.com/v1/")
	if err != nil || u.String() != "https://api.example.com/v1" {
		t.Errorf("ParseBase = %v, %v; want the URL without its trailing slash", u, err)
	}
}

func TestUnquote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`abc`:           "abc",
		`"abc"`:         "abc",
		` "a" "b" `:     "ab",
		`"a\"b"`:        `a"b`,
		`"`:             `"`,
		`"unterminated`: `"unterminated`,
	} {
		if got := rest.Unquote(in); got != want {
			t.Errorf("Unquote(%q) = %q, want %q", in, got, want)
		}
	}
}
