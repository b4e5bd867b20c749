package googledns_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/googledns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const (
	project     = "acme-proj"
	clientEmail = "certkeeper@acme-proj.iam.gserviceaccount.com"
	accessToken = "ya29.fake-access-token"
)

type rrset struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	TTL     int      `json:"ttl"`
	RRDatas []string `json:"rrdatas"`
	Kind    string   `json:"kind,omitempty"`
}

// fakeCloudDNS answers like Google's OAuth token endpoint (JWT bearer
// grant, RFC 7523) and Cloud DNS API v1.
type fakeCloudDNS struct {
	t      *testing.T
	srv    *httptest.Server
	pub    *rsa.PublicKey
	mu     sync.Mutex
	zones  []map[string]any
	sets   map[string]rrset // "zone name" → set
	tokens int
}

func gError(w http.ResponseWriter, code int, status, msg string) {
	dnstest.WriteJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status,
		"errors": []map[string]string{{"message": msg, "domain": "global", "reason": strings.ToLower(status)}}}})
}

func (f *fakeCloudDNS) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.t.Errorf("token request form %v: %v", r.PostForm, err)
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid JWT"})
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, sum[:], sig) != nil {
		dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
		return
	}
	var claims struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(raw, &claims)
	if claims.Iss != clientEmail || claims.Scope != googledns.Scope || claims.Aud != f.srv.URL+"/token" || claims.Exp <= claims.Iat {
		f.t.Errorf("JWT claims %+v", claims)
	}
	f.mu.Lock()
	f.tokens++
	f.mu.Unlock()
	dnstest.WriteJSON(w, http.StatusOK, map[string]any{"access_token": accessToken, "expires_in": 3599, "token_type": "Bearer"})
}

func (f *fakeCloudDNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" && r.Method == http.MethodPost {
		f.token(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		gError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	base := "/dns/v1/projects/" + project + "/managedZones"
	rest, ok := strings.CutPrefix(r.URL.Path, base)
	if !ok {
		gError(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	switch {
	case rest == "" && r.Method == http.MethodGet:
		start, _ := strconv.Atoi(r.URL.Query().Get("pageToken"))
		end := min(start+100, len(f.zones))
		out := map[string]any{"kind": "dns#managedZonesListResponse", "managedZones": f.zones[start:end]}
		if end < len(f.zones) {
			out["nextPageToken"] = strconv.Itoa(end)
		}
		dnstest.WriteJSON(w, http.StatusOK, out)
	case len(parts) == 2 && parts[1] == "rrsets" && r.Method == http.MethodGet:
		q := r.URL.Query()
		if q.Get("type") != "TXT" || !strings.HasSuffix(q.Get("name"), ".") {
			f.t.Errorf("rrsets query %s", r.URL.RawQuery)
		}
		sets := []rrset{}
		if s, ok := f.sets[parts[0]+" "+q.Get("name")]; ok {
			sets = append(sets, s)
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"kind": "dns#resourceRecordSetsListResponse", "rrsets": sets})
	case len(parts) == 2 && parts[1] == "changes" && r.Method == http.MethodPost:
		dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
		var change struct {
			Additions []rrset `json:"additions"`
			Deletions []rrset `json:"deletions"`
		}
		if !dnstest.ReadJSON(f.t, r, &change) {
			gError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
			return
		}
		for _, d := range change.Deletions {
			if cur, ok := f.sets[parts[0]+" "+d.Name]; !ok || !cmp.Equal(cur, d) {
				gError(w, http.StatusPreconditionFailed, "FAILED_PRECONDITION", "The resource record set '"+d.Name+"' does not match the existing one.")
				return
			}
		}
		for _, a := range change.Additions {
			if _, ok := f.sets[parts[0]+" "+a.Name]; ok && !slices.ContainsFunc(change.Deletions, func(d rrset) bool { return d.Name == a.Name }) {
				gError(w, http.StatusConflict, "ALREADY_EXISTS", "The resource 'entity.change.additions[0]' named '"+a.Name+" (TXT)' already exists")
				return
			}
			for _, d := range a.RRDatas {
				if !strings.HasPrefix(d, `"`) {
					f.t.Errorf("rrdata %q not quoted", d)
				}
			}
		}
		for _, d := range change.Deletions {
			delete(f.sets, parts[0]+" "+d.Name)
		}
		for _, a := range change.Additions {
			f.sets[parts[0]+" "+a.Name] = a
		}
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"kind": "dns#change", "id": "1", "status": "pending", "additions": change.Additions, "deletions": change.Deletions})
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		gError(w, http.StatusNotFound, "NOT_FOUND", "not found")
	}
}

func (f *fakeCloudDNS) txt(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, d := range f.sets[key].RRDatas {
		out = append(out, rest.Unquote(d))
	}
	return out
}

func serviceAccountKey(t *testing.T, tokenURI string) (string, *rsa.PublicKey) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	js, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "kid-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": clientEmail, "client_id": "1234567890", "token_uri": tokenURI,
	})
	return string(js), &key.PublicKey
}

func TestGoogleCloudDNS(t *testing.T) {
	t.Parallel()
	f := &fakeCloudDNS{t: t, sets: map[string]rrset{}}
	var want []string
	for i := range 250 {
		f.zones = append(f.zones, map[string]any{"name": fmt.Sprintf("zone-%d", i), "dnsName": fmt.Sprintf("z%03d.example.", i), "visibility": "public", "nameServers": []string{"ns-cloud-a1.googledomains.com."}})
		want = append(want, fmt.Sprintf("z%03d.example.", i))
	}
	f.zones = append(f.zones,
		map[string]any{"name": "example-com", "dnsName": "example.com.", "visibility": "public", "nameServers": []string{"ns-cloud-b1.googledomains.com.", "ns-cloud-b2.googledomains.com."}},
		map[string]any{"name": "corp", "dnsName": "corp.example.", "visibility": "private"})
	want = append(want, "example.com.")
	f.srv = httptest.NewServer(f)
	defer f.srv.Close()
	key, pub := serviceAccountKey(t, f.srv.URL+"/token")
	f.pub = pub

	p, err := googledns.New(t.Context(), googledns.Config{Project: project, ServiceAccountKey: secret.String(key), Endpoint: f.srv.URL + "/dns/v1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string { return f.txt("example-com _acme-challenge.www.example.com.") })
	})
	t.Run("zones and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, want) {
			t.Errorf("Zones = %d, %v; want %d public zones", len(zones), err, len(want))
		}
		ns, err := p.NameServers(t.Context(), "example.com")
		if err != nil || !cmp.Equal(ns, []string{"ns-cloud-b1.googledomains.com.", "ns-cloud-b2.googledomains.com."}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
		if f.tokens != 1 {
			t.Errorf("%d access tokens fetched, want 1 (reused)", f.tokens)
		}
	})
	t.Run("errors", func(t *testing.T) {
		other, _ := serviceAccountKey(t, f.srv.URL+"/token")
		bad, err := googledns.New(t.Context(), googledns.Config{Project: project, ServiceAccountKey: secret.String(other), Endpoint: f.srv.URL + "/dns/v1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "Invalid JWT Signature") || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("key the server does not know: %v", err)
		}
		wrongProject, _ := googledns.New(t.Context(), googledns.Config{Project: "other", ServiceAccountKey: secret.String(key), Endpoint: f.srv.URL + "/dns/v1"})
		_, err = wrongProject.Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "HTTP 403 Forbidden: PERMISSION_DENIED: The caller does not have permission") {
			t.Errorf("other project: %v", err)
		}
		if _, err := googledns.New(t.Context(), googledns.Config{Project: project, ServiceAccountKey: "{not json"}); err == nil {
			t.Error("a broken key was accepted")
		}
	})
}
