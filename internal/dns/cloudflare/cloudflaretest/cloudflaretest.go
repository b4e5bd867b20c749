// Package cloudflaretest holds a fake Cloudflare API v4 for tests: it keeps
// zones and TXT records in memory, checks every request's method, path,
// query, headers and body against the published API, and answers with
// Cloudflare's envelope and error shapes.
package cloudflaretest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
)

// Zone is a zone the fake account holds.
type Zone struct {
	ID          string
	Name        string
	NameServers []string
}

// Server is the fake API. Its fields may be set before the first request.
type Server struct {
	*httptest.Server
	// Token is the accepted API token.
	Token string
	// FailCreate, when set, makes record creation fail with this message
	// (code 1004, HTTP 400), as Cloudflare refuses a record.
	FailCreate string
	// OnChange is called after the TXT RRset at fqdn changed, with its
	// values; tests use it to mirror the records into a real DNS server.
	OnChange func(fqdn string, values []string)

	t            *testing.T
	mu           sync.Mutex
	zones        []Zone
	records      map[string][]record // zone id → records
	nextID       int
	zoneListings int
}

type record struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     int    `json:"ttl"`
}

// Start starts a fake account holding zones, accepting token.
func Start(t *testing.T, token string, zones ...Zone) *Server {
	s := &Server{Token: token, t: t, zones: zones, records: make(map[string][]record)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// URL of the API root, for Config.Endpoint.
func (s *Server) Endpoint() string { return s.Server.URL + "/client/v4" }

// TXT returns the values at fqdn (no trailing dot needed).
func (s *Server) TXT(fqdn string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.valuesLocked(strings.TrimSuffix(fqdn, "."))
}

// ZoneListings is how many GET /zones requests without a name filter the
// fake answered.
func (s *Server) ZoneListings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.zoneListings
}

func (s *Server) valuesLocked(name string) []string {
	var out []string
	for _, recs := range s.records {
		for _, r := range recs {
			if r.Name == name {
				out = append(out, rest.Unquote(r.Content))
			}
		}
	}
	return out
}

func fail(w http.ResponseWriter, status, code int, msg string) {
	dnstest.WriteJSON(w, status, map[string]any{
		"success": false, "errors": []map[string]any{{"code": code, "message": msg}}, "messages": []any{}, "result": nil,
	})
}

func ok(w http.ResponseWriter, result any, info map[string]int) {
	body := map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": result}
	if info != nil {
		body["result_info"] = info
	}
	dnstest.WriteJSON(w, http.StatusOK, body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	t := s.t
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		fail(w, http.StatusForbidden, 10000, "Authentication error")
		return
	}
	dnstest.WantHeader(t, r, "Accept", "application/json")
	path, found := strings.CutPrefix(r.URL.Path, "/client/v4/zones")
	if !found {
		fail(w, http.StatusNotFound, 7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case path == "" && r.Method == http.MethodGet:
		s.listZones(w, r)
	case len(parts) == 2 && parts[1] == "dns_records" && r.Method == http.MethodGet:
		s.listRecords(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "dns_records" && r.Method == http.MethodPost:
		s.createRecord(w, r, parts[0])
	case len(parts) == 3 && parts[1] == "dns_records" && r.Method == http.MethodDelete:
		s.deleteRecord(w, parts[0], parts[2])
	default:
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
		fail(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
	}
}

func pageParams(t *testing.T, r *http.Request, max int) (page, perPage int) {
	page, perPage = 1, 20
	if v := r.URL.Query().Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	if v := r.URL.Query().Get("per_page"); v != "" {
		perPage, _ = strconv.Atoi(v)
	}
	if page < 1 || perPage < 5 || perPage > max {
		t.Errorf("%s %s: page=%d per_page=%d out of range (5..%d)", r.Method, r.URL, page, perPage, max)
	}
	return page, perPage
}

func (s *Server) listZones(w http.ResponseWriter, r *http.Request) {
	for k := range r.URL.Query() {
		if !slices.Contains([]string{"name", "page", "per_page"}, k) {
			s.t.Errorf("GET /zones: unexpected query parameter %q", k)
		}
	}
	page, perPage := pageParams(s.t, r, 50)
	name := r.URL.Query().Get("name")
	if name == "" {
		s.zoneListings++
	}
	var match []map[string]any
	for _, z := range s.zones {
		if name == "" || z.Name == name {
			match = append(match, map[string]any{"id": z.ID, "name": z.Name, "status": "active", "name_servers": z.NameServers, "vanity_name_servers": []string{}})
		}
	}
	pages := (len(match) + perPage - 1) / perPage
	lo, hi := min((page-1)*perPage, len(match)), min(page*perPage, len(match))
	ok(w, append([]map[string]any{}, match[lo:hi]...), map[string]int{"page": page, "per_page": perPage, "count": hi - lo, "total_count": len(match), "total_pages": pages})
}

func (s *Server) zone(w http.ResponseWriter, id string) (Zone, bool) {
	for _, z := range s.zones {
		if z.ID == id {
			return z, true
		}
	}
	fail(w, http.StatusNotFound, 7003, "Could not route to /zones/"+id+"/dns_records, perhaps your object identifier is invalid?")
	return Zone{}, false
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, zoneID string) {
	if _, found := s.zone(w, zoneID); !found {
		return
	}
	q := r.URL.Query()
	if q.Get("type") != "TXT" || q.Get("name") == "" {
		s.t.Errorf("GET dns_records: want type=TXT and a name, got %s", r.URL.RawQuery)
	}
	page, perPage := pageParams(s.t, r, 5000000)
	var match []record
	for _, rec := range s.records[zoneID] {
		if rec.Type == q.Get("type") && rec.Name == q.Get("name") {
			match = append(match, rec)
		}
	}
	pages := (len(match) + perPage - 1) / perPage
	lo, hi := min((page-1)*perPage, len(match)), min(page*perPage, len(match))
	ok(w, append([]record{}, match[lo:hi]...), map[string]int{"page": page, "per_page": perPage, "count": hi - lo, "total_count": len(match), "total_pages": pages})
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, zoneID string) {
	z, found := s.zone(w, zoneID)
	if !found {
		return
	}
	dnstest.WantHeader(s.t, r, "Content-Type", "application/json")
	var in struct {
		Type    string `json:"type"`
		Name    string `json:"name"`
		Content string `json:"content"`
		TTL     int    `json:"ttl"`
	}
	if !dnstest.ReadJSON(s.t, r, &in) {
		fail(w, http.StatusBadRequest, 9207, "Request body is invalid.")
		return
	}
	switch {
	case s.FailCreate != "":
		fail(w, http.StatusBadRequest, 1004, s.FailCreate)
		return
	case in.Type != "TXT" || in.Name == "" || (in.Name != z.Name && !strings.HasSuffix(in.Name, "."+z.Name)):
		s.t.Errorf("POST dns_records: bad record %+v for zone %s", in, z.Name)
		fail(w, http.StatusBadRequest, 9000, "DNS name is invalid.")
		return
	case len(in.Content) < 2 || in.Content[0] != '"' || in.Content[len(in.Content)-1] != '"':
		s.t.Errorf("POST dns_records: content %q is not quoted", in.Content)
	case in.TTL != 1 && (in.TTL < 60 || in.TTL > 86400):
		fail(w, http.StatusBadRequest, 9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.")
		return
	}
	for _, rec := range s.records[zoneID] {
		if rec.Name == in.Name && rec.Type == in.Type && rec.Content == in.Content {
			fail(w, http.StatusBadRequest, 81058, "An identical record already exists.")
			return
		}
	}
	s.nextID++
	rec := record{ID: fmt.Sprintf("%032x", s.nextID), Type: in.Type, Name: in.Name, Content: in.Content, TTL: in.TTL}
	s.records[zoneID] = append(s.records[zoneID], rec)
	ok(w, rec, nil)
	s.changed(in.Name)
}

func (s *Server) deleteRecord(w http.ResponseWriter, zoneID, id string) {
	if _, found := s.zone(w, zoneID); !found {
		return
	}
	for i, rec := range s.records[zoneID] {
		if rec.ID == id {
			s.records[zoneID] = slices.Delete(s.records[zoneID], i, i+1)
			ok(w, map[string]string{"id": id}, nil)
			s.changed(rec.Name)
			return
		}
	}
	fail(w, http.StatusNotFound, 81044, "Record does not exist.")
}

func (s *Server) changed(name string) {
	if s.OnChange != nil {
		s.OnChange(name+".", s.valuesLocked(name))
	}
}
