// Package notify holds certkeeper's webhooks: the events (a certificate
// issued or renewed, an issuance that failed, a certificate close to expiry
// and not renewed, a revocation), the payloads in Key Vault Acmebot's shapes
// (generic JSON, Slack, Microsoft Teams Workflows) and their durable delivery
// as jobs with retries, so that a failing webhook never fails an issuance.
package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/config"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// Event is what happened to a certificate. It is stored in the delivery job,
// so it holds no secret.
type Event struct {
	// Kind is config.EventCompleted, EventFailed, EventExpiring or
	// EventRevoked.
	Kind            string    `json:"kind"`
	CertificateName string    `json:"certificateName"`
	DNSNames        []string  `json:"dnsNames"`
	ExpirationDate  time.Time `json:"expirationDate,omitzero"`
	// ACMEEndpoint is the CA's host name, as Acmebot sends it.
	ACMEEndpoint string `json:"acmeEndpoint,omitempty"`
	OperationID  string `json:"operationId,omitempty"`
	// Reason is why an issuance failed: the step and the other side's words.
	Reason string `json:"reason,omitempty"`
}

// Endpoint is one configured webhook.
type Endpoint struct {
	URL         secret.String
	Events      []string
	PayloadType string
}

// ID identifies the endpoint in delivery jobs without its URL, which may
// hold a token: the first 16 hex digits of the URL's SHA-256.
func (e Endpoint) ID() string {
	sum := sha256.Sum256([]byte(e.URL.Reveal()))
	return hex.EncodeToString(sum[:8])
}

// Wants reports whether the endpoint is sent events of kind.
func (e Endpoint) Wants(kind string) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, kind)
}

// Type is the payload type sent: the configured one, or for auto (or
// empty) the one Acmebot picks by the URL's host.
func (e Endpoint) Type() string {
	if e.PayloadType != "" && e.PayloadType != config.PayloadAuto {
		return e.PayloadType
	}
	return DetectPayloadType(e.URL.Reveal())
}

// DetectPayloadType picks the payload type by the URL's host as Acmebot v5
// does (WebhookPayloadBuilderFactory.DetectPayloadType in
// shibayan/keyvault-acmebot, Acmebot.App/Notifications): a host ending in
// hooks.slack.com is Slack, one ending in .logic.azure.com or
// .environment.api.powerplatform.com is a Teams Workflows adaptive card, and
// anything else gets generic JSON. Hosts compare case-insensitively.
func DetectPayloadType(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return config.PayloadGeneric
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case strings.HasSuffix(host, "hooks.slack.com"):
		return config.PayloadSlack
	case strings.HasSuffix(host, ".logic.azure.com"), strings.HasSuffix(host, ".environment.api.powerplatform.com"):
		return config.PayloadTeams
	}
	return config.PayloadGeneric
}

// acmebotTime is how Acmebot (System.Text.Json, DateTimeOffset) writes
// times: UTC with an explicit offset.
const acmebotTime = "2006-01-02T15:04:05+00:00"

// Names reported in the generic payload where Acmebot reports its Key Vault
// and Function App.
const (
	vaultName = "certkeeper"
	appName   = "certkeeper"
)

// Payload returns the JSON body for ev in the given payload type.
//
// The field names follow Acmebot (shibayan/keyvault-acmebot,
// KeyVault.Acmebot/Internal/GenericPayloadBuilder.cs, SlackPayloadBuilder.cs
// and TeamsPayloadBuilder.cs): the generic "completed" body is
// {certificateName, expirationDate, dnsNames, acmeEndpoint, keyVaultName,
// functionAppName} and "failed" is {certificateName, dnsNames, keyVaultName,
// functionAppName}. certkeeper adds event, operationId and reason, and sends
// the same shapes for its own events, expiring and revoked, which Acmebot
// does not have.
func Payload(payloadType string, ev Event) ([]byte, error) {
	var body any
	switch payloadType {
	case config.PayloadSlack:
		body = slackPayload(ev)
	case config.PayloadTeams:
		body = teamsPayload(ev)
	case config.PayloadGeneric, "":
		body = genericPayload(ev)
	default:
		return nil, fmt.Errorf("unknown payload type %q", payloadType)
	}
	return json.Marshal(body)
}

type generic struct {
	Event           string   `json:"event"`
	CertificateName string   `json:"certificateName"`
	ExpirationDate  *string  `json:"expirationDate,omitempty"`
	DNSNames        []string `json:"dnsNames"`
	ACMEEndpoint    string   `json:"acmeEndpoint,omitempty"`
	KeyVaultName    string   `json:"keyVaultName"`
	FunctionAppName string   `json:"functionAppName"`
	OperationID     string   `json:"operationId,omitempty"`
	Reason          string   `json:"reason,omitempty"`
}

func genericPayload(ev Event) generic {
	g := generic{
		Event: ev.Kind, CertificateName: ev.CertificateName, DNSNames: nonNil(ev.DNSNames),
		KeyVaultName: vaultName, FunctionAppName: appName, OperationID: ev.OperationID, Reason: ev.Reason,
	}
	if ev.Kind != config.EventFailed {
		g.ExpirationDate, g.ACMEEndpoint = expiration(ev), ev.ACMEEndpoint
	}
	return g
}

func expiration(ev Event) *string {
	if ev.ExpirationDate.IsZero() {
		return nil
	}
	s := ev.ExpirationDate.UTC().Format(acmebotTime)
	return &s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// headline is the sentence each chat message starts with; the completed and
// failed ones are Acmebot's.
func headline(ev Event) string {
	switch ev.Kind {
	case config.EventCompleted:
		return "A new certificate has been issued."
	case config.EventFailed:
		return "Failed to issue a new certificate."
	case config.EventExpiring:
		return "A certificate expires soon and has not been renewed."
	case config.EventRevoked:
		return "A certificate has been revoked."
	}
	return "Certificate event: " + ev.Kind
}

// fact is one titled value of a chat message.
type fact struct {
	title, value string
	short        bool
}

// facts are the values a chat message shows, in Acmebot's order.
func facts(ev Event) []fact {
	out := []fact{{"Certificate Name", ev.CertificateName, true}}
	if ev.Kind != config.EventFailed {
		if e := expiration(ev); e != nil {
			out = append(out, fact{"Expiration Date", *e, true})
		}
		if ev.ACMEEndpoint != "" {
			out = append(out, fact{"ACME Endpoint", ev.ACMEEndpoint, true})
		}
	}
	out = append(out, fact{"DNS Names", strings.Join(ev.DNSNames, "\n"), false})
	if ev.Reason != "" {
		out = append(out, fact{"Reason", ev.Reason, false})
	}
	return out
}

func slackColor(kind string) string {
	switch kind {
	case config.EventCompleted:
		return "good"
	case config.EventExpiring:
		return "warning"
	}
	return "danger"
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short,omitempty"`
}

type slackAttachment struct {
	Text   string       `json:"text"`
	Color  string       `json:"color"`
	Fields []slackField `json:"fields"`
}

type slackMessage struct {
	Username    string            `json:"username"`
	Attachments []slackAttachment `json:"attachments"`
}

func slackPayload(ev Event) slackMessage {
	var fields []slackField
	for _, f := range facts(ev) {
		fields = append(fields, slackField{Title: f.title, Value: f.value, Short: f.short})
	}
	return slackMessage{Username: "Acmebot", Attachments: []slackAttachment{{
		Text: headline(ev), Color: slackColor(ev.Kind), Fields: fields,
	}}}
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type teamsBlock struct {
	Type  string      `json:"type"`
	Text  string      `json:"text,omitempty"`
	Wrap  bool        `json:"wrap,omitempty"`
	Facts []teamsFact `json:"facts,omitempty"`
}

type teamsCard struct {
	Type string       `json:"type"`
	Body []teamsBlock `json:"body"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	Content     teamsCard `json:"content"`
}

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

func teamsPayload(ev Event) teamsMessage {
	var fs []teamsFact
	for _, f := range facts(ev) {
		fs = append(fs, teamsFact{Title: f.title, Value: f.value})
	}
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{
		ContentType: "application/vnd.microsoft.card.adaptive",
		Content: teamsCard{Type: "AdaptiveCard", Body: []teamsBlock{
			{Type: "TextBlock", Text: headline(ev), Wrap: true},
			{Type: "FactSet", Facts: fs},
		}},
	}}}
}
