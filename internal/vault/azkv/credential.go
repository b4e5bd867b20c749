package azkv

import (
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/certkeeper/certkeeper/internal/secret"
)

// Credential kinds.
const (
	// CredentialDefault tries, in order, the environment, workload identity
	// and managed identity, as azidentity.DefaultAzureCredential does.
	CredentialDefault = "default"
	// CredentialManagedIdentity is the identity of the VM, App Service or
	// container the process runs in; ClientID picks a user-assigned one.
	CredentialManagedIdentity = "managedIdentity"
	// CredentialWorkloadIdentity exchanges a federated token (Kubernetes
	// workload identity) for an Entra ID token.
	CredentialWorkloadIdentity = "workloadIdentity"
	// CredentialClientSecret is an app registration's client secret.
	CredentialClientSecret = "clientSecret"
)

// CredentialConfig selects how certkeeper signs in to Entra ID.
type CredentialConfig struct {
	// Kind is one of the Credential constants; empty is CredentialDefault.
	Kind     string
	TenantID string
	ClientID string
	// ClientSecret is for CredentialClientSecret.
	ClientSecret secret.String
	// TokenFile is the federated token for CredentialWorkloadIdentity
	// (empty: AZURE_FEDERATED_TOKEN_FILE, as set by the workload identity
	// webhook).
	TokenFile string
	// AuthorityHost is the Entra ID endpoint for sovereign clouds, such as
	// https://login.microsoftonline.us/; empty is the public cloud.
	AuthorityHost string
	// Transport replaces the HTTP client (tests).
	Transport policy.Transporter
}

// NewCredential returns the credential cfg describes. Values cfg leaves
// empty are read by azidentity from the standard AZURE_* variables.
func NewCredential(cfg CredentialConfig) (azcore.TokenCredential, error) {
	opts := azcore.ClientOptions{}
	if cfg.AuthorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.AuthorityHost, Services: cloud.AzurePublic.Services}
	}
	if cfg.Transport != nil {
		opts.Transport = cfg.Transport
	}
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch cfg.Kind {
	case "", CredentialDefault:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: opts, TenantID: cfg.TenantID})
	case CredentialManagedIdentity:
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if cfg.ClientID != "" {
			o.ID = azidentity.ClientID(cfg.ClientID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(o)
	case CredentialWorkloadIdentity:
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, TenantID: cfg.TenantID, ClientID: cfg.ClientID, TokenFilePath: cfg.TokenFile})
	case CredentialClientSecret:
		cred, err = azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	default:
		return nil, fmt.Errorf("azure credential: unknown kind %q", cfg.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the %s Azure credential: %w", cfg.Kind, err)
	}
	return cred, nil
}
