package tandem_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/tandemhq/tandem/sdk/go/internal/servertest"
)

// exampleURL is the server the runnable examples use, started by TestMain.
var exampleURL string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tandem-sdk-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := servertest.Build(context.Background(), dir)
	if errors.Is(err, servertest.ErrNoRepository) && os.Getenv("CI") == "" {
		// The module on its own (e.g. from the module cache): run the
		// tests that need no server, skip the examples.
		fmt.Fprintln(os.Stderr, "skipping the runnable examples: they run against a server built from the Tandem repository, and this is not a checkout of it")
		flag.Parse()
		if err := flag.Set("test.run", "^Test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := servertest.Start(bin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exampleURL = srv.URL
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}
