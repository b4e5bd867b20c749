package cloudflare_test

import "github.com/certkeeper/certkeeper/internal/secret"

func secretOf(s string) secret.String { return secret.String(s) }
