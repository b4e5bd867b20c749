// Command certkeeper obtains TLS certificates from ACME CAs by DNS-01, keeps
// them, renews and revokes them, behind a REST API compatible with Key Vault
// Acmebot.
//
//	certkeeper serve --config certkeeper.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `certkeeper — certificates from any ACME CA by DNS-01, behind an Acmebot-compatible API

Usage:
  certkeeper dev [--zone Z] [--keep]       run everything in one process: embedded CA, DNS and the service
  certkeeper serve [--config FILE]         run the service (config also from CERTKEEPER_CONFIG)
  certkeeper migrate [--config FILE]       apply the database migrations and exit (serve applies them too)
  certkeeper check [--config FILE]         validate the configuration and exit
  certkeeper version                       print the version
  certkeeper masterkey rotate              re-encrypt every private key under a new master key (service stopped)
  certkeeper import --from-azure-key-vault DESTINATION
                                           adopt the certificates Key Vault Acmebot issued, so certkeeper renews them

Client commands (server from --server or CERTKEEPER_URL, key from --api-key or CERTKEEPER_API_KEY,
or an OIDC token from --token or CERTKEEPER_TOKEN):
  certkeeper issue [flags] DNSNAME...      issue a certificate (--wait to follow it, --dry-run to only check)
  certkeeper renew [--wait] NAME           renew a certificate with its stored settings
  certkeeper revoke [--reason R] NAME...   revoke certificates' newest versions
  certkeeper replace [--reason R] NAME     issue again with a new key, then revoke the old version
  certkeeper account show [--ca NAME]      show the ACME account at a CA
  certkeeper account rollover --ca NAME    replace the key of the ACME account at a CA
  certkeeper list                          list certificates with their renewal state and next renewal
  certkeeper status OPERATION_ID           show an operation and its steps
  certkeeper get NAME --out DIR            write cert.pem, chain.pem, fullchain.pem, privkey.pem
  certkeeper apikey create --name N [--role R]... [--zone Z]... [--expires 90d]
                                           make an API key (admin); the key is printed once
  certkeeper apikey list                   list API keys (admin)
  certkeeper apikey revoke ID|NAME         revoke an API key at once (admin)
  certkeeper audit [--certificate N] [--actor A] [--action X]
                                           read the audit log (admin)

apikey and audit also take --offline [--config FILE]: they then work on the
database directly, without a server, for example to make the first admin key.

Every client command takes --json for machine-readable output.
Run "certkeeper COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 bad usage or configuration.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e := env{stdout: stdout, stderr: stderr, getenv: os.Getenv, terminal: isTerminal(os.Stderr)}
	clientCommands := map[string]func(context.Context, []string, env) error{
		"issue": cmdIssue, "renew": cmdRenew, "revoke": cmdRevoke, "list": cmdList, "status": cmdStatus, "get": cmdGet,
		"apikey": cmdAPIKey, "audit": cmdAudit,
		"replace": cmdReplace, "account": cmdAccount,
	}
	var err error
	switch cmd := args[0]; {
	case clientCommands[cmd] != nil:
		err = clientCommands[cmd](ctx, args[1:], e)
	case cmd == "serve":
		err = serve(ctx, args[1:], stderr)
	case cmd == "migrate":
		err = migrate(ctx, args[1:], stdout, stderr)
	case cmd == "check":
		err = check(ctx, args[1:], stdout, stderr)
	case cmd == "dev":
		err = dev(ctx, args[1:], stdout, stderr, os.Getenv)
	case cmd == "masterkey":
		err = cmdMasterKey(ctx, args[1:], stdout, stderr, os.Getenv)
	case cmd == "import":
		err = cmdImport(ctx, args[1:], stdout, stderr, os.Getenv)
	case cmd == "version" || cmd == "--version" || cmd == "-version":
		fmt.Fprintln(stdout, "certkeeper", version)
		return 0
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "certkeeper: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var (
		ue *usageError
		se silentError
	)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &se):
		return 1
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "certkeeper: %v\n", ue.err)
		return 2
	default:
		fmt.Fprintf(stderr, "certkeeper: %v\n", err)
		return 1
	}
}

// usageError is a problem with the command line or the configuration: exit
// code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }
