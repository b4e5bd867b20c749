package route53_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/certkeeper/certkeeper/internal/dns/dnstest"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/dns/route53"
	"github.com/certkeeper/certkeeper/internal/secret"
)

const (
	accessKey = "AKIAIOSFODNN7EXAMPLE"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	xmlns     = "https://route53.amazonaws.com/doc/2013-04-01/"
)

type rrset struct {
	Name    string `xml:"Name"`
	Type    string `xml:"Type"`
	TTL     int64  `xml:"TTL"`
	Records []struct {
		Value string `xml:"Value"`
	} `xml:"ResourceRecords>ResourceRecord"`
}

// fakeRoute53 answers like Route 53's REST API (2013-04-01), checking the
// SigV4 signature of every request.
type fakeRoute53 struct {
	t       *testing.T
	mu      sync.Mutex
	zones   []string         // names with trailing dot; id = "Z" + index
	private map[string]bool  // zone names that are private
	sets    map[string]rrset // "zoneID name" → TXT RRset
	changes int
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

func r53Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>5d2b8c48-3d3a-4b0a-9bd3-0e5e0e2a1f01</RequestId></ErrorResponse>`, xmlns, code, msg)
}

func writeXML(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/xml")
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+body)
}

// verify recomputes the SigV4 signature over the headers the client signed.
func (f *fakeRoute53) verify(r *http.Request, body []byte) bool {
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		f.t.Errorf("%s %s: Authorization = %q", r.Method, r.URL, r.Header.Get("Authorization"))
		return false
	}
	if m[1] != accessKey || m[3] != "us-east-1" || m[4] != "route53" {
		return false
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		f.t.Errorf("X-Amz-Date = %q", r.Header.Get("X-Amz-Date"))
		return false
	}
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(m[5], ";") {
		if h != "host" {
			req.Header.Set(h, r.Header.Get(h))
		}
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(r.Context(), aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey},
		req, hex.EncodeToString(sum[:]), "route53", "us-east-1", when)
	if err != nil {
		f.t.Fatal(err)
	}
	want := authRE.FindStringSubmatch(req.Header.Get("Authorization"))
	return want != nil && want[6] == m[6]
}

func (f *fakeRoute53) zoneXML(i int) string {
	return fmt.Sprintf(`<HostedZone><Id>/hostedzone/Z%d</Id><Name>%s</Name><CallerReference>ref-%d</CallerReference><Config><PrivateZone>%t</PrivateZone></Config><ResourceRecordSetCount>2</ResourceRecordSetCount></HostedZone>`,
		i, f.zones[i], i, f.private[f.zones[i]])
}

func (f *fakeRoute53) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.verify(r, body) {
		r53Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/2013-04-01/hostedzone")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	q := r.URL.Query()
	switch {
	case path == "" && r.Method == http.MethodGet:
		start := 0
		if m := q.Get("marker"); m != "" {
			start, _ = strconv.Atoi(strings.TrimPrefix(m, "Z"))
		}
		per := 100
		if v := q.Get("maxitems"); v != "" {
			per, _ = strconv.Atoi(v)
		}
		end := min(start+per, len(f.zones))
		var b strings.Builder
		for i := start; i < end; i++ {
			b.WriteString(f.zoneXML(i))
		}
		next := ""
		if end < len(f.zones) {
			next = fmt.Sprintf("<NextMarker>Z%d</NextMarker>", end)
		}
		writeXML(w, fmt.Sprintf(`<ListHostedZonesResponse xmlns="%s"><HostedZones>%s</HostedZones><IsTruncated>%t</IsTruncated>%s<MaxItems>%d</MaxItems></ListHostedZonesResponse>`,
			xmlns, b.String(), end < len(f.zones), next, per))
	case len(parts) >= 1 && f.zoneIndex(parts[0]) < 0:
		r53Error(w, http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: "+parts[0])
	case len(parts) == 1 && r.Method == http.MethodGet:
		writeXML(w, fmt.Sprintf(`<GetHostedZoneResponse xmlns="%s">%s<DelegationSet><NameServers><NameServer>ns-1.awsdns-01.org</NameServer><NameServer>ns-2.awsdns-02.co.uk</NameServer></NameServers></DelegationSet></GetHostedZoneResponse>`,
			xmlns, f.zoneXML(f.zoneIndex(parts[0]))))
	case len(parts) == 2 && parts[1] == "rrset" && r.Method == http.MethodGet:
		if q.Get("type") != "TXT" || q.Get("name") == "" || q.Get("maxitems") != "1" {
			f.t.Errorf("ListResourceRecordSets query %s", r.URL.RawQuery)
		}
		var sets strings.Builder
		if s, ok := f.sets[parts[0]+" "+q.Get("name")]; ok {
			out, _ := xml.Marshal(struct {
				XMLName xml.Name `xml:"ResourceRecordSet"`
				rrset
			}{rrset: s})
			sets.Write(out)
		}
		writeXML(w, fmt.Sprintf(`<ListResourceRecordSetsResponse xmlns="%s"><ResourceRecordSets>%s</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>1</MaxItems></ListResourceRecordSetsResponse>`, xmlns, sets.String()))
	case len(parts) == 2 && parts[1] == "rrset" && r.Method == http.MethodPost:
		var req struct {
			XMLName xml.Name `xml:"ChangeResourceRecordSetsRequest"`
			Changes []struct {
				Action string `xml:"Action"`
				Set    rrset  `xml:"ResourceRecordSet"`
			} `xml:"ChangeBatch>Changes>Change"`
		}
		if err := xml.Unmarshal(body, &req); err != nil || req.XMLName.Space != xmlns {
			f.t.Errorf("ChangeResourceRecordSets body %s: %v", body, err)
			r53Error(w, http.StatusBadRequest, "InvalidInput", "Could not parse the request body")
			return
		}
		for _, c := range req.Changes {
			key := parts[0] + " " + c.Set.Name
			if c.Set.Type != "TXT" || !strings.HasSuffix(c.Set.Name, f.zones[f.zoneIndex(parts[0])]) {
				f.t.Errorf("change %+v outside the zone", c)
			}
			for _, rec := range c.Set.Records {
				v := rec.Value
				if !strings.HasPrefix(v, `"`) {
					w.WriteHeader(http.StatusBadRequest)
					writeXML(w, fmt.Sprintf(`<InvalidChangeBatch xmlns="%s"><Messages><Message>Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '%s''</Message></Messages><RequestId>x</RequestId></InvalidChangeBatch>`, xmlns, v))
					return
				}
			}
			switch c.Action {
			case "UPSERT":
				if c.Set.TTL <= 0 || len(c.Set.Records) == 0 {
					f.t.Errorf("UPSERT without TTL or values: %+v", c.Set)
				}
				f.sets[key] = c.Set
			case "DELETE":
				if cur, ok := f.sets[key]; !ok || !cmp.Equal(cur, c.Set) {
					r53Error(w, http.StatusBadRequest, "InvalidChangeBatch", "[Tried to delete resource record set ["+c.Set.Name+"], type='TXT'] but the values provided do not match the current values]")
					return
				}
				delete(f.sets, key)
			default:
				f.t.Errorf("action %q", c.Action)
			}
		}
		f.changes++
		writeXML(w, fmt.Sprintf(`<ChangeResourceRecordSetsResponse xmlns="%s"><ChangeInfo><Id>/change/C%d</Id><Status>PENDING</Status><SubmittedAt>2026-01-01T00:00:00.000Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>`, xmlns, f.changes))
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		r53Error(w, http.StatusNotFound, "NotFound", "no route")
	}
}

func (f *fakeRoute53) zoneIndex(id string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "Z"))
	if err != nil || !strings.HasPrefix(id, "Z") || i < 0 || i >= len(f.zones) {
		return -1
	}
	return i
}

func (f *fakeRoute53) txt(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, rec := range f.sets[key].Records {
		out = append(out, rest.Unquote(rec.Value))
	}
	return out
}

func TestRoute53(t *testing.T) {
	t.Parallel()
	f := &fakeRoute53{t: t, private: map[string]bool{"internal.example.": true}, sets: map[string]rrset{}}
	var want []string
	for i := range 230 {
		f.zones = append(f.zones, fmt.Sprintf("z%03d.example.", i))
		want = append(want, fmt.Sprintf("z%03d.example", i))
	}
	f.zones = append(f.zones, "example.com.", "internal.example.")
	want = append(want, "example.com")
	slices.Sort(want)
	srv := httptest.NewServer(f)
	defer srv.Close()
	newProvider := func(secretKey string) *route53.Provider {
		p, err := route53.New(t.Context(), route53.Config{AccessKeyID: accessKey, SecretAccessKey: secret.String(secretKey), Endpoint: srv.URL, TTL: 60})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider(secretKey)
	exampleID := fmt.Sprintf("Z%d", len(f.zones)-2)
	t.Run("rrset", func(t *testing.T) {
		dnstest.Scenario(t, p, "example.com", "_acme-challenge.www.example.com.", func() []string {
			return f.txt(exampleID + " _acme-challenge.www.example.com.")
		})
	})
	t.Run("zones and name servers", func(t *testing.T) {
		zones, err := p.Zones(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, zones); diff != "" {
			t.Errorf("Zones, public only (-want +got):\n%s", diff)
		}
		ns, err := p.NameServers(t.Context(), "example.com")
		if err != nil || !cmp.Equal(ns, []string{"ns-1.awsdns-01.org", "ns-2.awsdns-02.co.uk"}) {
			t.Errorf("NameServers = %v, %v", ns, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		err := newProvider("not-the-secret").Present(t.Context(), "example.com", "_acme-challenge.example.com.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "StatusCode: 403") || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
			t.Errorf("wrong secret: %v", err)
		}
		err = p.Present(t.Context(), "internal.example", "_acme-challenge.internal.example.", []string{"v"})
		if err == nil || !strings.Contains(err.Error(), "no public hosted zone internal.example") {
			t.Errorf("private zone: %v", err)
		}
	})
}
