package akamai_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/akamai"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const (
	clientToken  = "akab-client-token-xxx-xxxxxxxxxxxxxxxx"
	clientSecret = "SOMESECRET0123456789abcdefghijklmnopqrstuvw="
	accessToken  = "akab-access-token-xxx-xxxxxxxxxxxxxxxx"
	switchKey    = "B-C-1IE2OH8:1-8UBAS"
)

var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type rrset struct {
	Name  string   `json:"name"`
	Type  string   `json:"type"`
	TTL   int      `json:"ttl"`
	Rdata []string `json:"rdata"`
}

// fakeEdgeDNS answers like Edge DNS's Configuration API v2 and checks
// every EdgeGrid signature by computing it again.
type fakeEdgeDNS struct {
	t      *testing.T
	mu     sync.Mutex
	zones  []string
	sets   map[string]rrset // zone/name
	nonces map[string]bool
}

func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	io.WriteString(w, `{"type":"https://problems.luna.akamaiapis.net/config-dns/error-`+strconv.Itoa(status)+`","title":"`+title+`","status":`+strconv.Itoa(status)+`,"detail":"`+detail+`","instance":"/config-dns/v2/x"}`)
}

func hmacB64(key, msg string) string {
	m := hmac.New(sha256.New, []byte(key))
	io.WriteString(m, msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// verify checks the Authorization header as Akamai's gateway does.
func (f *fakeEdgeDNS) verify(r *http.Request, body []byte) string {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "EG1-HMAC-SHA256 ")
	if !ok {
		return "missing EG1-HMAC-SHA256 authorization"
	}
	fields := map[string]string{}
	var order []string
	for _, kv := range strings.Split(h, ";") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "signature" {
			v = strings.TrimPrefix(kv, "signature=") // base64 may end in =
		}
		fields[k] = v
		order = append(order, k)
	}
	if !slices.Equal(order, []string{"client_token", "access_token", "timestamp", "nonce", "signature"}) {
		return "malformed authorization header"
	}
	if fields["client_token"] != clientToken || fields["access_token"] != accessToken {
		return "Invalid authorization client_token or access_token"
	}
	if fields["timestamp"] != clock.Format("20060102T15:04:05+0000") {
		return "Invalid timestamp"
	}
	if fields["nonce"] == "" || f.nonces[fields["nonce"]] {
		return "Invalid nonce: reused"
	}
	f.nonces[fields["nonce"]] = true
	hash := ""
	if r.Method == http.MethodPost && len(body) > 0 {
		sum := sha256.Sum256(body)
		hash = base64.StdEncoding.EncodeToString(sum[:])
	}
	prefix := "EG1-HMAC-SHA256 client_token=" + clientToken + ";access_token=" + accessToken +
		";timestamp=" + fields["timestamp"] + ";nonce=" + fields["nonce"] + ";"
	data := r.Method + "\thttp\t" + r.Host + "\t" + r.URL.RequestURI() + "\t\t" + hash + "\t" + prefix
	want := hmacB64(hmacB64(clientSecret, fields["timestamp"]), data)
	if !hmac.Equal([]byte(fields["signature"]), []byte(want)) {
		return "The signature does not match"
	}
	return ""
}

func (f *fakeEdgeDNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if msg := f.verify(r, body); msg != "" {
		problem(w, http.StatusUnauthorized, "Not authorized", msg)
		return
	}
	dnstest.WantHeader(f.t, r, "Accept", "application/json")
	q := r.URL.Query()
	if q.Get("accountSwitchKey") != switchKey {
		f.t.Errorf("%s %s: accountSwitchKey = %q", r.Method, r.URL, q.Get("accountSwitchKey"))
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/config-dns/v2/zones"), "/")
	switch {
	case r.URL.Path == "/config-dns/v2/zones" && r.Method == http.MethodGet:
		page, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("pageSize"))
		if q.Get("types") != "PRIMARY,SECONDARY" || page < 1 || size < 1 {
			f.t.Errorf("GET zones?%s", r.URL.RawQuery)
		}
		var zs []map[string]any
		for i, z := range f.zones {
			if i >= (page-1)*size && i < page*size {
				zs = append(zs, map[string]any{"zone": z, "type": "PRIMARY", "contractId": "C-0N7RAC7", "activationState": "ACTIVE"})
			}
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{
			"metadata": map[string]any{"page": page, "pageSize": size, "totalElements": len(f.zones)}, "zones": zs})
	case len(parts) == 6 && parts[2] == "names" && parts[4] == "types" && parts[5] == "TXT":
		if !slices.Contains(f.zones, parts[1]) {
			problem(w, http.StatusNotFound, "Not Found", "Zone "+parts[1]+" does not exist")
			return
		}
		if !strings.HasSuffix(parts[3], "."+parts[1]) && parts[3] != parts[1] {
			f.t.Errorf("name %q outside zone %q", parts[3], parts[1])
		}
		key := parts[1] + "/" + parts[3]
		cur, exists := f.sets[key]
		switch r.Method {
		case http.MethodGet:
			if !exists {
				problem(w, http.StatusNotFound, "Not Found", "Record set "+parts[3]+" TXT not found")
				return
			}
			dnstest.WriteJSON(w, http.StatusOK, cur)
		case http.MethodPost, http.MethodPut:
			dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
			var in rrset
			if err := dnstest.DecodeStrict(body, &in); err != nil {
				problem(w, http.StatusBadRequest, "Bad Request", "Invalid JSON")
				return
			}
			if in.Name != parts[3] || in.Type != "TXT" || in.TTL < 30 || len(in.Rdata) == 0 {
				problem(w, http.StatusBadRequest, "Bad Request", "Invalid record set")
				return
			}
			for _, v := range in.Rdata {
				if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
					f.t.Errorf("TXT rdata %q not quoted", v)
				}
			}
			if r.Method == http.MethodPost && exists {
				problem(w, http.StatusConflict, "Conflict", "Record set already exists")
				return
			}
			if r.Method == http.MethodPut && !exists {
				problem(w, http.StatusNotFound, "Not Found", "Record set does not exist")
				return
			}
			f.sets[key] = in
			dnstest.WriteJSON(w, map[bool]int{true: http.StatusCreated, false: http.StatusOK}[r.Method == http.MethodPost], in)
		case http.MethodDelete:
			if !exists {
				problem(w, http.StatusNotFound, "Not Found", "Record set does not exist")
				return
			}
			delete(f.sets, key)
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		problem(w, http.StatusNotFound, "Not Found", "no route")
	}
}

func (f *fakeEdgeDNS) txt(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, v := range f.sets[key].Rdata {
		out = append(out, strings.Trim(v, `"`))
	}
	return out
}

func TestAkamai(t *testing.T) {
	t.Parallel()
	f := &fakeEdgeDNS{t: t, sets: map[string]rrset{}, nonces: map[string]bool{}}
	for i := range 1203 {
		f.zones = append(f.zones, "z"+strconv.Itoa(i)+".example")
	}
	f.zones = append(f.zones, "example.com")
	srv := httptest.NewServer(f)
	defer srv.Close()
	newProvider := func(sec string) *akamai.Provider {
		p, err := akamai.New(akamai.Config{ClientToken: clientToken, ClientSecret: secret.String(sec), AccessToken: accessToken,
			AccountSwitchKey: switchKey, Endpoint: srv.URL, Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(clientSecret)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string { return f.txt("example.com/_acme-challenge.www.example.com") })
	})
	t.Run("zones", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, f.zones) {
			t.Errorf("Zones = %d, %v; want %d", len(zones), err, len(f.zones))
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := newProvider("wrong-secret").Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: Not authorized: The signature does not match") || strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("wrong secret: %v", err)
		}
		err = p.Present(t.Context(), "unknown.example", "_acme-challenge.unknown.example.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "HTTP 404 Not Found: Not Found: Zone unknown.example does not exist") {
			t.Errorf("unknown zone: %v", err)
		}
	})
}

// TestSignPOST checks the content hash of a POST body is signed: the same
// request with another body gets another signature.
func TestSignPOST(t *testing.T) {
	t.Parallel()
	c := akamai.Credentials{ClientToken: clientToken, ClientSecret: clientSecret, AccessToken: accessToken}
	u, _ := http.NewRequest(http.MethodPost, "https://akab-x.luna.akamaiapis.net/config-dns/v2/zones?a=b", nil)
	a := akamai.Sign(c, http.MethodPost, u.URL, []byte(`{"a":1}`), clock, "n")
	b := akamai.Sign(c, http.MethodPost, u.URL, []byte(`{"a":2}`), clock, "n")
	put := akamai.Sign(c, http.MethodPut, u.URL, []byte(`{"a":1}`), clock, "n")
	put2 := akamai.Sign(c, http.MethodPut, u.URL, []byte(`{"a":2}`), clock, "n")
	if a == b || put != put2 || bytes.Equal([]byte(a), []byte(put)) {
		t.Errorf("signatures: POST %q / %q, PUT %q / %q", a, b, put, put2)
	}
	if !strings.HasPrefix(a, "EG1-HMAC-SHA256 client_token="+clientToken+";access_token="+accessToken+";timestamp=20260304T05:06:07+0000;nonce=n;signature=") {
		t.Errorf("header %q", a)
	}
}

// TestSignVector checks Sign against the EdgeGrid reference vector that
// Akamai's client libraries share ("POST inside limit").
func TestSignVector(t *testing.T) {
	t.Parallel()
	c := akamai.Credentials{
		ClientToken:  "akab-client-token-xxx-xxxxxxxxxxxxxxxx",
		ClientSecret: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=",
		AccessToken:  "akab-access-token-xxx-xxxxxxxxxxxxxxxx",
	}
	u, err := url.Parse("https://akaa-baseurl-xxxxxxxxxxx-xxxxxxxxxxxxx.luna.akamaiapis.net/testapi/v1/t3")
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := time.Parse("20060102T15:04:05-0700", "20140321T19:34:21+0000")
	got := akamai.Sign(c, http.MethodPost, u, []byte("datadatadatadatadatadatadatadata"), ts, "nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
	want := "EG1-HMAC-SHA256 client_token=akab-client-token-xxx-xxxxxxxxxxxxxxxx;access_token=akab-access-token-xxx-xxxxxxxxxxxxxxxx;" +
		"timestamp=20140321T19:34:21+0000;nonce=nonce-xx-xxxx-xxxx-xxxx-xxxxxxxxxxxx;signature=hXm4iCxtpN22m4cbZb4lVLW5rhX8Ca82vCFqXzSTPe4="
	if got != want {
		t.Errorf("Sign =\n%s\nwant\n%s", got, want)
	}
}
