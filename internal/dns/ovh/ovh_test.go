package ovh_test

import (
	"crypto/sha1" //nolint:gosec // OVH's signature
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/ovh"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
)

const (
	appKey    = "7kbG7Bk7S9Nt7ZSV"
	appSecret = "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF"
	consumer  = "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1"
)

func TestOVH(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	type rec struct {
		ID        int64  `json:"id"`
		Zone      string `json:"zone"`
		FieldType string `json:"fieldType"`
		SubDomain string `json:"subDomain"`
		Target    string `json:"target"`
		TTL       int    `json:"ttl"`
	}
	var recs []rec
	var next int64 = 5000
	refreshes := 0
	serverSkew := int64(-300) // the server's clock is five minutes behind
	srv := httptest.NewServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/1.0/auth/time" {
			io.WriteString(w, strconv.FormatInt(time.Now().Unix()+serverSkew, 10))
			return
		}
		ts := r.Header.Get("X-Ovh-Timestamp")
		sent, _ := strconv.ParseInt(ts, 10, 64)
		sum := sha1.Sum([]byte(appSecret + "+" + consumer + "+" + r.Method + "+" + srv.URL + r.URL.RequestURI() + "+" + string(body) + "+" + ts))
		if r.Header.Get("X-Ovh-Application") != appKey || r.Header.Get("X-Ovh-Consumer") != consumer ||
			r.Header.Get("X-Ovh-Signature") != "$1$"+hex.EncodeToString(sum[:]) {
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"errorCode": "INVALID_SIGNATURE", "httpCode": "400 Bad Request", "message": "Invalid signature"})
			return
		}
		if d := sent - (time.Now().Unix() + serverSkew); d > 60 || d < -60 {
			dnstest.WriteJSON(w, http.StatusBadRequest, map[string]string{"class": "Client::BadRequest", "message": "Query out of time"})
			return
		}
		zone := "/1.0/domain/zone/example.com"
		switch {
		case r.URL.Path == "/1.0/domain/zone" && r.Method == http.MethodGet:
			dnstest.WriteJSON(w, http.StatusOK, []string{"example.com", "example.net"})
		case r.URL.Path == zone && r.Method == http.MethodGet:
			dnstest.WriteJSON(w, http.StatusOK, map[string]any{"name": "example.com", "nameServers": []string{"dns200.anycast.me", "ns200.anycast.me"}, "dnssecSupported": true})
		case r.URL.Path == zone+"/record" && r.Method == http.MethodGet:
			ids := []int64{}
			for _, x := range recs {
				if x.FieldType == r.URL.Query().Get("fieldType") && x.SubDomain == r.URL.Query().Get("subDomain") {
					ids = append(ids, x.ID)
				}
			}
			dnstest.WriteJSON(w, http.StatusOK, ids)
		case strings.HasPrefix(r.URL.Path, zone+"/record/") && r.Method == http.MethodGet:
			id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, zone+"/record/"), 10, 64)
			i := slices.IndexFunc(recs, func(x rec) bool { return x.ID == id })
			if i < 0 {
				dnstest.WriteJSON(w, http.StatusNotFound, map[string]string{"class": "Client::NotFound", "message": "The requested object (id = " + strconv.FormatInt(id, 10) + ") does not exist"})
				return
			}
			dnstest.WriteJSON(w, http.StatusOK, recs[i])
		case r.URL.Path == zone+"/record" && r.Method == http.MethodPost:
			var in struct {
				FieldType string `json:"fieldType"`
				SubDomain string `json:"subDomain"`
				Target    string `json:"target"`
				TTL       int    `json:"ttl"`
			}
			if err := dnstest.DecodeStrict(body, &in); err != nil || in.FieldType != "TXT" {
				t.Errorf("POST record %s: %v", body, err)
			}
			next++
			x := rec{ID: next, Zone: "example.com", FieldType: in.FieldType, SubDomain: in.SubDomain, Target: `"` + in.Target + `"`, TTL: in.TTL}
			recs = append(recs, x)
			dnstest.WriteJSON(w, http.StatusOK, x)
		case strings.HasPrefix(r.URL.Path, zone+"/record/") && r.Method == http.MethodDelete:
			id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, zone+"/record/"), 10, 64)
			recs = slices.DeleteFunc(recs, func(x rec) bool { return x.ID == id })
			io.WriteString(w, "null")
		case r.URL.Path == zone+"/refresh" && r.Method == http.MethodPost:
			refreshes++
			io.WriteString(w, "null")
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
		}
	})
	defer srv.Close()
	p, err := ovh.New(ovh.Config{Endpoint: srv.URL + "/1.0", ApplicationKey: appKey, ApplicationSecret: appSecret, ConsumerKey: consumer})
	if err != nil {
		t.Fatal(err)
	}
	dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, x := range recs {
			if x.SubDomain == "_acme-challenge.www" {
				out = append(out, rest.Unquote(x.Target))
			}
		}
		return out
	})
	if refreshes != 4 {
		t.Errorf("%d zone refreshes, want one per change (4)", refreshes)
	}
	if zones, err := p.Zones(t.Context()); err != nil || !cmp.Equal(zones, []string{"example.com", "example.net"}) {
		t.Errorf("Zones = %v, %v", zones, err)
	}
	if ns, err := p.NameServers(t.Context(), "example.com"); err != nil || len(ns) != 2 {
		t.Errorf("NameServers = %v, %v", ns, err)
	}
	bad, _ := ovh.New(ovh.Config{Endpoint: srv.URL + "/1.0", ApplicationKey: appKey, ApplicationSecret: "wrong", ConsumerKey: consumer})
	if _, err := bad.Zones(t.Context()); err == nil || !strings.Contains(err.Error(), "HTTP 400 Bad Request: INVALID_SIGNATURE: Invalid signature") {
		t.Errorf("wrong secret: %v", err)
	}
}
