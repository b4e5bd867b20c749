package issuer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-acme/lego/v5/acme"
)

// directoryTTL is how long a fetched directory is reused.
const directoryTTL = 5 * time.Minute

// cachedDirectory is a directory and when it was fetched.
type cachedDirectory struct {
	dir acme.Directory
	at  time.Time
}

// Directory returns the CA's directory (RFC 8555 section 7.1.1): its URLs
// and its meta object (profiles, caaIdentities, externalAccountRequired). A
// directory fetched less than five minutes ago is reused; failures are not
// cached. An unreachable CA or one answering 5xx gives an error that
// FailoverReason recognises.
func (i *Issuer) Directory(ctx context.Context) (acme.Directory, error) {
	i.dirMu.Lock()
	c := i.dir
	i.dirMu.Unlock()
	if c != nil && time.Since(c.at) < directoryTTL {
		return c.dir, nil
	}
	return i.FetchDirectory(ctx)
}

// FetchDirectory reads the CA's directory now, bypassing the cache, and
// caches what it read.
func (i *Issuer) FetchDirectory(ctx context.Context) (acme.Directory, error) {
	dir, err := i.fetchDirectory(ctx)
	if err != nil {
		return acme.Directory{}, err
	}
	i.dirMu.Lock()
	i.dir = &cachedDirectory{dir: dir, at: time.Now()}
	i.dirMu.Unlock()
	return dir, nil
}

func (i *Issuer) fetchDirectory(ctx context.Context) (acme.Directory, error) {
	op := "reading ACME directory " + i.cfg.DirectoryURL
	req, err := http.NewRequestWithContext(WithEndpoint(ctx, EndpointDirectory), http.MethodGet, i.cfg.DirectoryURL, nil)
	if err != nil {
		return acme.Directory{}, &ProblemError{Op: op, Err: err}
	}
	if i.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", i.cfg.UserAgent)
	}
	resp, err := i.httpClient().Do(req)
	if err != nil {
		return acme.Directory{}, &ProblemError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return acme.Directory{}, &ProblemError{Op: op, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		// The classifying transport turned a 5xx into a problem document.
		var pd acme.ProblemDetails
		if json.Unmarshal(body, &pd) == nil && pd.Type != "" {
			if pd.HTTPStatus == 0 {
				pd.HTTPStatus = resp.StatusCode
			}
			return acme.Directory{}, fail("", op, &pd)
		}
		return acme.Directory{}, &ProblemError{Op: op, Err: fmt.Errorf("status %d", resp.StatusCode)}
	}
	var dir acme.Directory
	if err := json.Unmarshal(body, &dir); err != nil {
		return acme.Directory{}, &ProblemError{Op: "decoding ACME directory " + i.cfg.DirectoryURL, Err: err}
	}
	if dir.NewAccountURL == "" || dir.NewOrderURL == "" || dir.NewNonceURL == "" {
		return acme.Directory{}, &ProblemError{Op: "decoding ACME directory " + i.cfg.DirectoryURL,
			Err: fmt.Errorf("the directory lacks newAccount, newOrder or newNonce")}
	}
	return dir, nil
}

// Profiles returns the profiles the CA's directory offers (name to
// description; draft-ietf-acme-profiles). A CA without profiles returns an
// empty map.
func (i *Issuer) Profiles(ctx context.Context) (map[string]string, error) {
	dir, err := i.Directory(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(dir.Meta.Profiles))
	maps.Copy(out, dir.Meta.Profiles)
	return out, nil
}

// CAAIdentities returns the issuer domain names the CA recognises as its
// own in CAA records (the directory's meta.caaIdentities), lowercase.
func (i *Issuer) CAAIdentities(ctx context.Context) ([]string, error) {
	dir, err := i.Directory(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(dir.Meta.CaaIdentities))
	for _, id := range dir.Meta.CaaIdentities {
		out = append(out, strings.ToLower(strings.TrimSuffix(strings.TrimSpace(id), ".")))
	}
	return out, nil
}

// ProfileError is returned when a profile is asked for that the CA's
// directory does not offer.
type ProfileError struct {
	Profile string
	// Offered are the profiles the CA offers, sorted.
	Offered []string
}

func (e *ProfileError) Error() string {
	return fmt.Sprintf("the CA does not offer profile %q; it offers %s", e.Profile, strings.Join(e.Offered, ", "))
}

// CheckProfile returns a *ProfileError when profile is not empty, the CA
// lists profiles and profile is not among them.
func CheckProfile(dir acme.Directory, profile string) error {
	if profile == "" || len(dir.Meta.Profiles) == 0 {
		return nil
	}
	if _, ok := dir.Meta.Profiles[profile]; ok {
		return nil
	}
	return &ProfileError{Profile: profile, Offered: slices.Sorted(maps.Keys(dir.Meta.Profiles))}
}
