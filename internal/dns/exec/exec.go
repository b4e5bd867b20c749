// Package exec holds a DNS provider that runs a program, following lego's
// exec contract (https://go-acme.github.io/lego/dns/exec/):
//
//	<command> present <fqdn> <value>
//	<command> cleanup <fqdn> <value>
//
// once per value, with the fully qualified record name (trailing dot). A
// non-zero exit is an error carrying the program's output. The program
// cannot list zones: configure them.
//
// It is native rather than lego's providers/dns/exec, which follows CNAMEs
// through a process-wide resolver unless the process environment says not
// to; certkeeper does that itself.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	osexec "os/exec"
	"strings"
	"time"

	"github.com/certkeeper/certkeeper/internal/dns"
)

// DefaultTimeout bounds one run of the program.
const DefaultTimeout = time.Minute

// maxOutput bounds how much of the program's output an error quotes.
const maxOutput = 1024

// Config is what a Provider needs.
type Config struct {
	// Command is the program to run (a path, or a name looked up in PATH).
	Command string
	// Args come before the action and its arguments.
	Args    []string
	Timeout time.Duration
}

// Provider runs one program. It is safe for concurrent use.
type Provider struct{ cfg Config }

var _ dns.Provider = (*Provider)(nil)

// New checks cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Command == "" {
		return nil, errors.New("configuring exec: command is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Provider{cfg: cfg}, nil
}

// Present implements dns.Provider.
func (p *Provider) Present(ctx context.Context, _, fqdn string, values []string) error {
	return p.run(ctx, "present", fqdn, values)
}

// CleanUp implements dns.Provider.
func (p *Provider) CleanUp(ctx context.Context, _, fqdn string, values []string) error {
	return p.run(ctx, "cleanup", fqdn, values)
}

func (p *Provider) run(ctx context.Context, action, fqdn string, values []string) error {
	name := strings.ToLower(strings.TrimSuffix(fqdn, ".")) + "."
	for _, v := range values {
		rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		cmd := osexec.CommandContext(rctx, p.cfg.Command, append(append([]string{}, p.cfg.Args...), action, name, v)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			text := strings.TrimSpace(out.String())
			if len(text) > maxOutput {
				text = text[:maxOutput] + "…"
			}
			if text != "" {
				return fmt.Errorf("running %s %s %s: %w: %s", p.cfg.Command, action, name, err, text)
			}
			return fmt.Errorf("running %s %s %s: %w", p.cfg.Command, action, name, err)
		}
	}
	return nil
}
