// Package route53 holds a DNS provider for Amazon Route 53 through the AWS
// SDK for Go v2 (https://docs.aws.amazon.com/Route53/latest/APIReference/):
// ListHostedZones for the zones, GetHostedZone for their name servers,
// ListResourceRecordSets to read a TXT RRset and ChangeResourceRecordSets
// (UPSERT or DELETE) to write it, signed with SigV4.
//
// It does not use lego's providers/dns/route53, which finds the zone by SOA
// queries through a process-wide resolver and follows CNAMEs unless the
// process environment says not to; certkeeper does both itself, and lists
// zones, which lego does not. Route 53's INSYNC state is not awaited: the
// propagation check asks the zone's name servers themselves.
package route53

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/certkeeper/certkeeper/internal/dns"
	"github.com/certkeeper/certkeeper/internal/dns/rest"
	"github.com/certkeeper/certkeeper/internal/secret"
)

// DefaultRegion signs requests; Route 53 is a global service.
const DefaultRegion = "us-east-1"

// zoneCacheTTL is how long the hosted zone ids are reused.
const zoneCacheTTL = time.Minute

// Config is what a Provider needs. Without AccessKeyID the AWS SDK's
// default credential chain is used (environment, shared files, web
// identity, instance role); RoleARN is assumed on top of either.
type Config struct {
	AccessKeyID     string
	SecretAccessKey secret.String
	SessionToken    secret.String
	Region          string
	RoleARN         string
	// HostedZoneID pins every record to one hosted zone.
	HostedZoneID string
	// Endpoint replaces Route 53's endpoint.
	Endpoint   string
	TTL        int
	HTTPClient *http.Client
}

// Provider is one AWS account's Route 53. It is safe for concurrent use.
type Provider struct {
	client *r53.Client
	pinned string
	ttl    int64

	mu       sync.Mutex // serializes RRset read-modify-write, guards the cache
	zoneIDs  map[string]string
	cachedAt time.Time
}

var (
	_ dns.Provider           = (*Provider)(nil)
	_ dns.ZoneLister         = (*Provider)(nil)
	_ dns.NameServerReporter = (*Provider)(nil)
)

// New builds a Provider. With explicit keys it reads nothing from the
// process; without, the SDK's default chain is loaded (it may read the
// environment and ~/.aws, as the SDK does).
func New(ctx context.Context, cfg Config) (*Provider, error) {
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	var awsCfg aws.Config
	if cfg.AccessKeyID != "" {
		if cfg.SecretAccessKey == "" {
			return nil, errors.New("configuring Route 53: secretAccessKey is required with accessKeyId")
		}
		awsCfg = aws.Config{
			Region: region,
			Credentials: credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(),
				cfg.SessionToken.Reveal()),
		}
	} else {
		var err error
		awsCfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
		if err != nil {
			return nil, fmt.Errorf("configuring Route 53: loading the default AWS credentials: %w", err)
		}
	}
	if cfg.HTTPClient != nil {
		awsCfg.HTTPClient = cfg.HTTPClient
	}
	if cfg.RoleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN))
	}
	client := r53.NewFromConfig(awsCfg, func(o *r53.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 60
	}
	return &Provider{client: client, pinned: cfg.HostedZoneID, ttl: int64(ttl), zoneIDs: map[string]string{}}, nil
}

func normalize(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") }

// publicZones lists the public hosted zones: name → id.
func (p *Provider) publicZones(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	pages := r53.NewListHostedZonesPaginator(p.client, &r53.ListHostedZonesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing hosted zones: %w", err)
		}
		for _, z := range page.HostedZones {
			if z.Config != nil && z.Config.PrivateZone {
				continue
			}
			out[normalize(aws.ToString(z.Name))] = strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/")
		}
	}
	p.mu.Lock()
	p.zoneIDs, p.cachedAt = out, time.Now()
	p.mu.Unlock()
	return out, nil
}

// Zones implements dns.ZoneLister: the public hosted zones.
func (p *Provider) Zones(ctx context.Context) ([]string, error) {
	zones, err := p.publicZones(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(zones))
	for n := range zones {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// zoneID returns the hosted zone id for zone.
func (p *Provider) zoneID(ctx context.Context, zone string) (string, error) {
	if p.pinned != "" {
		return strings.TrimPrefix(p.pinned, "/hostedzone/"), nil
	}
	zone = normalize(zone)
	p.mu.Lock()
	id, ok := p.zoneIDs[zone]
	fresh := time.Since(p.cachedAt) < zoneCacheTTL
	p.mu.Unlock()
	if ok && fresh {
		return id, nil
	}
	zones, err := p.publicZones(ctx)
	if err != nil {
		return "", err
	}
	if id, ok := zones[zone]; ok {
		return id, nil
	}
	return "", fmt.Errorf("no public hosted zone %s in this AWS account", zone)
}

// NameServers implements dns.NameServerReporter with the hosted zone's
// delegation set.
func (p *Provider) NameServers(ctx context.Context, zone string) ([]string, error) {
	id, err := p.zoneID(ctx, zone)
	if err != nil {
		return nil, err
	}
	out, err := p.client.GetHostedZone(ctx, &r53.GetHostedZoneInput{Id: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("reading hosted zone %s: %w", id, err)
	}
	if out.DelegationSet == nil {
		return nil, nil
	}
	return out.DelegationSet.NameServers, nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, zone, fqdn string, values []string) error {
	return p.change(ctx, zone, fqdn, func(cur []string) []string {
		for _, v := range values {
			if !slices.Contains(cur, v) {
				cur = append(cur, v)
			}
		}
		return cur
	})
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, zone, fqdn string, values []string) error {
	return p.change(ctx, zone, fqdn, func(cur []string) []string {
		return slices.DeleteFunc(cur, func(v string) bool { return slices.Contains(values, v) })
	})
}

func (p *Provider) change(ctx context.Context, zone, fqdn string, edit func([]string) []string) error {
	id, err := p.zoneID(ctx, zone)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	name := normalize(fqdn) + "."
	list, err := p.client.ListResourceRecordSets(ctx, &r53.ListResourceRecordSetsInput{
		HostedZoneId: aws.String(id), StartRecordName: aws.String(name), StartRecordType: types.RRTypeTxt, MaxItems: aws.Int32(1),
	})
	if err != nil {
		return fmt.Errorf("reading TXT %s: %w", fqdn, err)
	}
	var existing *types.ResourceRecordSet
	var cur []string
	if len(list.ResourceRecordSets) > 0 {
		s := list.ResourceRecordSets[0]
		if normalize(aws.ToString(s.Name))+"." == name && s.Type == types.RRTypeTxt {
			existing = &s
			for _, r := range s.ResourceRecords {
				cur = append(cur, rest.Unquote(aws.ToString(r.Value)))
			}
		}
	}
	before := slices.Clone(cur)
	next := edit(cur)
	if slices.Equal(before, next) {
		return nil
	}
	var change types.Change
	if len(next) == 0 {
		change = types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: existing}
	} else {
		set := &types.ResourceRecordSet{Name: aws.String(name), Type: types.RRTypeTxt, TTL: aws.Int64(p.ttl)}
		for _, v := range next {
			set.ResourceRecords = append(set.ResourceRecords, types.ResourceRecord{Value: aws.String(rest.Quote(v))})
		}
		change = types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: set}
	}
	_, err = p.client.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(id),
		ChangeBatch:  &types.ChangeBatch{Comment: aws.String("certkeeper DNS-01"), Changes: []types.Change{change}},
	})
	if err != nil {
		return fmt.Errorf("writing TXT %s: %w", fqdn, err)
	}
	return nil
}
