package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
)

// grantList collects repeated --grant flags.
type grantList []string

func (g *grantList) String() string { return strings.Join(*g, " ") }

func (g *grantList) Set(s string) error {
	for _, f := range strings.Fields(s) {
		if _, err := auth.ParseGrant(f); err != nil {
			return err
		}
		*g = append(*g, f)
	}
	return nil
}

// token mints a development HS256 JWT with the given grants and prints it
// on stdout. The secret comes from --secret or TANDEM_JWT_SECRET (the
// same variable `tandem serve` reads). Errors: usageError for bad flags, a
// missing or short secret, a bad grant.
func token(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tandem token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	secret := fs.String("secret", "", "HS256 secret (default $TANDEM_JWT_SECRET); the server's --jwt-secret")
	sub := fs.String("sub", "", "subject (required): who the token is for; replaces {sub} in grants")
	var grants grantList
	fs.Var(&grants, "grant", "a grant action:pattern, e.g. read:collections/** (repeatable, or space-separated)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	aud := fs.String("aud", "", "audience (the server's --jwt-audience)")
	iss := fs.String("iss", "", "issuer (the server's --jwt-issuer)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: tandem token --sub SUBJECT --grant ACTION:PATTERN [--grant …] [--ttl 1h]

Mints a development JWT (HS256) for a server started with --jwt-secret.
Example:
  TANDEM_JWT_SECRET=$(openssl rand -hex 32) tandem token --sub alice \
    --grant 'read:collections/**' --grant 'publish:channels/chat.*/messages'

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *secret == "" {
		*secret = getenv("TANDEM_JWT_SECRET")
	}
	if *secret == "" {
		return errors.New("tandem token: no secret: pass --secret or set TANDEM_JWT_SECRET")
	}
	if *sub == "" {
		fs.Usage()
		return usageError{errors.New("--sub is required")}
	}
	tok, err := auth.Mint([]byte(*secret), *sub, grants, *ttl, *aud, *iss)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
