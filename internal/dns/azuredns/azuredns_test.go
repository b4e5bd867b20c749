package azuredns_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/azuredns"
	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const (
	tenant       = "11111111-2222-3333-4444-555555555555"
	clientID     = "66666666-7777-8888-9999-000000000000"
	clientSecret = "azure-client-secret-0123456789"
	sub          = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	accessToken  = "eyJ0eXAiOiJKV1QifQ.fake.token"
)

// fakeAzure answers like Microsoft Entra ID's token endpoint (client
// credentials) and Azure Resource Manager's DNS and private DNS APIs.
type fakeAzure struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	zones  map[string][]string       // resource type → zone names, in resource group "dns-rg"
	sets   map[string]map[string]any // record set path → properties
	tokens int
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	dnstest.WriteJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *fakeAzure) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/"+tenant+"/v2.0/.well-known/openid-configuration":
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":         f.srv.URL + "/" + tenant + "/oauth2/v2.0/token",
			"authorization_endpoint": f.srv.URL + "/" + tenant + "/oauth2/v2.0/authorize",
			"issuer":                 f.srv.URL + "/" + tenant + "/v2.0",
		})
		return
	case r.URL.Path == "/"+tenant+"/oauth2/v2.0/token" && r.Method == http.MethodPost:
		r.ParseForm()
		form := r.PostForm
		if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != clientID || !strings.HasPrefix(form.Get("scope"), "https://management.core.windows.net/.default") {
			f.t.Errorf("token request %v", form)
		}
		if form.Get("client_secret") != clientSecret {
			dnstest.WriteJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client",
				"error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": []int{7000215}})
			return
		}
		f.tokens++
		dnstest.WriteJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": accessToken})
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return
	}
	prefix := "/subscriptions/" + sub + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		armError(w, http.StatusForbidden, "AuthorizationFailed", "The client does not have authorization to perform action over scope '"+r.URL.Path+"'")
		return
	}
	typ := ""
	for _, t := range []string{"dnsZones", "privateDnsZones"} {
		if strings.Contains(r.URL.Path, "/providers/Microsoft.Network/"+t) {
			typ = t
		}
	}
	wantVersion := map[string]string{"dnsZones": "2018-05-01", "privateDnsZones": "2024-06-01"}[typ]
	if typ == "" || r.URL.Query().Get("api-version") != wantVersion {
		f.t.Errorf("%s %s: resource type %q, api-version %q", r.Method, r.URL, typ, r.URL.Query().Get("api-version"))
		armError(w, http.StatusBadRequest, "InvalidApiVersionParameter", "bad api-version")
		return
	}
	rgPrefix := prefix + "resourceGroups/dns-rg/providers/Microsoft.Network/" + typ
	switch {
	case r.URL.Path == prefix+"providers/Microsoft.Network/"+typ && r.Method == http.MethodGet:
		skip, _ := strconv.Atoi(r.URL.Query().Get("$skipToken"))
		names := f.zones[typ]
		end := min(skip+100, len(names))
		var value []map[string]any
		for _, n := range names[skip:end] {
			props := map[string]any{"numberOfRecordSets": 2}
			if typ == "dnsZones" {
				props["nameServers"] = []string{"ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."}
			}
			value = append(value, map[string]any{"id": rgPrefix + "/" + n, "name": n, "type": "Microsoft.Network/" + typ, "location": "global", "properties": props})
		}
		out := map[string]any{"value": value}
		if end < len(names) {
			out["nextLink"] = f.srv.URL + r.URL.Path + "?api-version=" + wantVersion + "&$skipToken=" + strconv.Itoa(end)
		}
		dnstest.WriteJSON(w, http.StatusOK, out)
	case strings.HasPrefix(r.URL.Path, rgPrefix+"/"):
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, rgPrefix+"/"), "/")
		if len(parts) != 3 || parts[1] != "TXT" || !slices.Contains(f.zones[typ], parts[0]) {
			armError(w, http.StatusNotFound, "ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '"+parts[0]+"' not found.")
			return
		}
		ttlKey, recKey := "TTL", "TXTRecords"
		if typ == "privateDnsZones" {
			ttlKey, recKey = "ttl", "txtRecords"
		}
		switch r.Method {
		case http.MethodGet:
			props, ok := f.sets[r.URL.Path]
			if !ok {
				armError(w, http.StatusNotFound, "NotFound", "The resource record '"+parts[2]+"' does not exist in resource group 'dns-rg' of subscription '"+sub+"'.")
				return
			}
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"id": r.URL.Path, "name": parts[2], "etag": "e", "properties": props})
		case http.MethodPut:
			dnstest.WantHeader(f.t, r, "Content-Type", "application/json")
			var body struct {
				Properties map[string]any `json:"properties"`
			}
			if !dnstest.ReadJSON(f.t, r, &body) {
				armError(w, http.StatusBadRequest, "BadRequest", "invalid body")
				return
			}
			for k := range body.Properties {
				if k != ttlKey && k != recKey {
					armError(w, http.StatusBadRequest, "BadRequest", "Could not find member '"+k+"' on object of type 'RecordSetProperties'")
					return
				}
			}
			if _, ok := body.Properties[recKey].([]any); !ok {
				f.t.Errorf("PUT %s without %s: %v", r.URL.Path, recKey, body.Properties)
			}
			f.sets[r.URL.Path] = body.Properties
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"id": r.URL.Path, "name": parts[2], "properties": body.Properties})
		case http.MethodDelete:
			delete(f.sets, r.URL.Path)
			w.WriteHeader(http.StatusOK)
		}
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		armError(w, http.StatusNotFound, "NotFound", "no route")
	}
}

func (f *fakeAzure) txt(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	props := f.sets[path]
	recs, _ := props["TXTRecords"].([]any)
	if r2, ok := props["txtRecords"].([]any); ok {
		recs = r2
	}
	var out []string
	for _, r := range recs {
		for _, v := range r.(map[string]any)["value"].([]any) {
			out = append(out, v.(string))
		}
	}
	return out
}

func TestAzureDNS(t *testing.T) {
	t.Parallel()
	f := &fakeAzure{t: t, zones: map[string][]string{"privateDnsZones": {"corp.internal"}}, sets: map[string]map[string]any{}}
	for i := range 130 {
		f.zones["dnsZones"] = append(f.zones["dnsZones"], fmt.Sprintf("z%03d.example", i))
	}
	f.zones["dnsZones"] = append(f.zones["dnsZones"], "example.com")
	f.srv = httptest.NewTLSServer(f)
	defer f.srv.Close()
	newProvider := func(private bool, sec string) *azuredns.Provider {
		p, err := azuredns.New(azuredns.Config{Private: private, SubscriptionID: sub, TenantID: tenant, ClientID: clientID,
			ClientSecret: secret.String(sec), ResourceManagerEndpoint: f.srv.URL, AuthorityHost: f.srv.URL + "/", HTTPClient: f.srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(false, clientSecret)
	rg := "/subscriptions/" + sub + "/resourceGroups/dns-rg/providers/Microsoft.Network/"
	t.Run("public rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
			return f.txt(rg + "dnsZones/example.com/TXT/_acme-challenge.www")
		})
	})
	t.Run("private rrset", func(t *testing.T) {
		priv := newProvider(true, clientSecret)
		dnstest.Scenario(t, priv, "corp.internal", "_acme-challenge.corp.internal.", func() []string {
			return f.txt(rg + "privateDnsZones/corp.internal/TXT/_acme-challenge")
		})
		if ns, err := priv.NameServers(t.Context(), "corp.internal"); err != nil || ns != nil {
			t.Errorf("private NameServers = %v, %v", ns, err)
		}
	})
	t.Run("zones and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil || !cmp.Equal(zones, f.zones["dnsZones"]) {
			t.Errorf("Zones = %d, %v; want %d", len(zones), err, len(f.zones["dnsZones"]))
		}
		ns, err := p.NameServers(t.Context(), "example.com")
		if err != nil || !cmp.Equal(ns, []string{"ns1-01.azure-dns.com.", "ns2-01.azure-dns.net."}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := newProvider(false, "wrong-secret").Zones(t.Context())
		if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("wrong secret: %v", err)
		}
		err = p.Present(t.Context(), "missing.example", "_acme-challenge.missing.example.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "zone missing.example is not in subscription "+sub) {
			t.Errorf("unknown zone: %v", err)
		}
	})
}
