package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// providerCommonKeys are the YAML keys every provider type has.
var providerCommonKeys = []string{"name", "type", "zones", "ttl", "propagationTimeout"}

// providerCommon is the common part of DNSProvider, decoded on its own.
type providerCommon struct {
	Name               string        `yaml:"name"`
	Type               string        `yaml:"type"`
	Zones              []string      `yaml:"zones"`
	TTL                int           `yaml:"ttl"`
	PropagationTimeout time.Duration `yaml:"propagationTimeout"`
}

// UnmarshalYAML implements yaml.Unmarshaler. The common keys and the keys of
// the block for the provider's type sit in one mapping; any other key is an
// error naming the key and its line, as is an unknown type.
func (p *DNSProvider) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return typeError("line %d: a dns provider must be a mapping", node.Line)
	}
	typ, typeLine := "", node.Line
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k, v := node.Content[i], node.Content[i+1]; k.Value == "type" && v.Kind == yaml.ScalarNode {
			typ, typeLine = v.Value, v.Line
		}
	}
	newBlock, ok := providerTypes[typ]
	if !ok {
		if typ == "" {
			return typeError("line %d: dns provider: type is required, one of: %s", node.Line, strings.Join(ProviderTypes, ", "))
		}
		return typeError("line %d: dns provider type %q is not supported, use one of: %s", typeLine, typ, strings.Join(ProviderTypes, ", "))
	}
	typeKeys := blockKeys(newBlock())
	unknown := &yaml.TypeError{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if !slices.Contains(providerCommonKeys, k.Value) && !slices.Contains(typeKeys, k.Value) {
			unknown.Errors = append(unknown.Errors, fmt.Sprintf("line %d: field %s not valid in a dns provider of type %s", k.Line, k.Value, typ))
		}
	}
	if len(unknown.Errors) > 0 {
		return unknown
	}

	common := providerCommon{TTL: DefaultTTL}
	if err := node.Decode(&common); err != nil {
		return err
	}
	out := DNSProvider{
		Name:               common.Name,
		Type:               common.Type,
		Zones:              common.Zones,
		TTL:                common.TTL,
		PropagationTimeout: common.PropagationTimeout,
	}
	block := newBlock()
	if err := node.Decode(block); err != nil {
		return err
	}
	out.setBlock(block)
	*p = out
	return nil
}

// typeError returns a *yaml.TypeError, which the decoder collects with the
// other problems of the document instead of stopping at it.
func typeError(format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf(format, args...)}}
}
