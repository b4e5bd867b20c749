package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// Webhook events and payload types (the values of events and payloadType).
const (
	EventCompleted = "completed"
	EventFailed    = "failed"
	EventExpiring  = "expiring"
	EventRevoked   = "revoked"

	PayloadAuto    = "auto"
	PayloadGeneric = "generic"
	PayloadSlack   = "slack"
	PayloadTeams   = "teams"
)

// WebhookEvents and PayloadTypes list the accepted values.
var (
	WebhookEvents = []string{EventCompleted, EventFailed, EventExpiring, EventRevoked}
	PayloadTypes  = []string{PayloadAuto, PayloadGeneric, PayloadSlack, PayloadTeams}
)

// Webhooks is the webhook key: one URL (every event, payload type auto, as
// in Acmebot) or a list of endpoints.
type Webhooks []Webhook

// Webhook is one endpoint that is told about certificate events.
type Webhook struct {
	// URL receives a JSON POST per event. Slack and Teams URLs carry their
	// credentials, so it is a secret; URLFile is the file form.
	URL     secret.String `yaml:"url"`
	URLFile string        `yaml:"urlFile"`
	// Events are the events sent; empty means all.
	Events []string `yaml:"events"`
	// PayloadType is auto (by host, as Acmebot picks), generic, slack or
	// teams; empty means auto.
	PayloadType string `yaml:"payloadType"`
}

// webhookKeys are the keys of one webhook endpoint.
var webhookKeys = []string{"url", "urlFile", "events", "payloadType"}

// UnmarshalYAML implements yaml.Unmarshaler: a scalar URL or a list of
// endpoints, whose unknown keys are errors.
func (w *Webhooks) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		if node.Tag == "!!null" || node.Value == "" {
			*w = nil
			return nil
		}
		*w = Webhooks{{URL: secret.String(node.Value)}}
		return nil
	case yaml.SequenceNode:
	default:
		return typeError("line %d: webhook must be a URL or a list of endpoints", node.Line)
	}
	out := make(Webhooks, 0, len(node.Content))
	unknown := &yaml.TypeError{}
	for _, item := range node.Content {
		if item.Kind == yaml.ScalarNode {
			out = append(out, Webhook{URL: secret.String(item.Value)})
			continue
		}
		if item.Kind != yaml.MappingNode {
			unknown.Errors = append(unknown.Errors, fmt.Sprintf("line %d: a webhook endpoint must be a URL or a mapping", item.Line))
			continue
		}
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k := item.Content[i]; !slices.Contains(webhookKeys, k.Value) {
				unknown.Errors = append(unknown.Errors, fmt.Sprintf("line %d: field %s not valid in a webhook endpoint", k.Line, k.Value))
			}
		}
		var hook Webhook
		if err := item.Decode(&hook); err != nil {
			return err
		}
		out = append(out, hook)
	}
	if len(unknown.Errors) > 0 {
		return unknown
	}
	*w = out
	return nil
}

// readWebhookFiles reads each urlFile into its URL.
func (w Webhooks) readFiles(read func(path string, dst *secret.String, file string)) {
	for i := range w {
		read(fmt.Sprintf("webhook[%d].url", i), &w[i].URL, w[i].URLFile)
	}
}

func (w Webhooks) validate(p *problems) {
	for i, hook := range w {
		path := fmt.Sprintf("webhook[%d]", i)
		if hook.URL == "" {
			p.add(path+".url", "required")
		} else if u, err := url.Parse(hook.URL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL may hold a token: say nothing about its value.
			p.add(path+".url", "must be an absolute http or https URL")
		}
		for j, e := range hook.Events {
			if !slices.Contains(WebhookEvents, e) {
				p.add(fmt.Sprintf("%s.events[%d]", path, j), "%q is not an event, use one of: %s", e, strings.Join(WebhookEvents, ", "))
			}
		}
		if hook.PayloadType != "" && !slices.Contains(PayloadTypes, hook.PayloadType) {
			p.add(path+".payloadType", "%q is not a payload type, use one of: %s", hook.PayloadType, strings.Join(PayloadTypes, ", "))
		}
	}
}
