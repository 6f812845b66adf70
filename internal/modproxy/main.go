// Command modproxy writes module versions into a directory laid out as a
// GOPROXY (file:// URL) serves them: for each module directory given, the
// version's .info, .mod and .zip (made by golang.org/x/mod/zip, which
// leaves out nested modules such as sdk/go) and its line in @v/list.
// CI uses it to check a release the way users get it, with
// `go install github.com/tandemhq/tandem/cmd/tandem@vX` (see
// docs/release.md), without publishing anything.
//
// Usage: go run ./internal/modproxy -dir PROXYDIR -version vX.Y.Z MODDIR...
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run parses args and writes every module; it returns the exit code.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("modproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "proxy directory to write into (created if missing)")
	version := fs.String("version", "", "version to publish each module at, e.g. v0.1.0")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || !semver.IsValid(*version) || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: modproxy -dir PROXYDIR -version vX.Y.Z MODDIR...")
		return 2
	}
	for _, m := range fs.Args() {
		path, err := write(*dir, *version, m, time.Now().UTC())
		if err != nil {
			fmt.Fprintln(stderr, "modproxy:", err)
			return 1
		}
		fmt.Fprintf(stderr, "modproxy: %s@%s from %s\n", path, *version, m)
	}
	return 0
}

// write publishes the module in modDir at version into the proxy
// directory and returns its module path. It errors when modDir has no
// parsable go.mod or the module's files do not make a valid module zip.
func write(proxyDir, version, modDir string, now time.Time) (string, error) {
	gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return "", err
	}
	path := modfile.ModulePath(gomod)
	if path == "" {
		return "", fmt.Errorf("%s/go.mod: no module line", modDir)
	}
	esc, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return "", err
	}
	vdir := filepath.Join(proxyDir, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, now})
	if err := os.WriteFile(filepath.Join(vdir, escVer+".info"), info, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(vdir, escVer+".mod"), gomod, 0o644); err != nil {
		return "", err
	}
	zf, err := os.Create(filepath.Join(vdir, escVer+".zip"))
	if err != nil {
		return "", err
	}
	zerr := zip.CreateFromDir(zf, module.Version{Path: path, Version: version}, modDir)
	if err := errors.Join(zerr, zf.Close()); err != nil {
		return "", fmt.Errorf("%s: %w", modDir, err)
	}
	list := filepath.Join(vdir, "list")
	old, err := os.ReadFile(list)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if !strings.Contains("\n"+string(old), "\n"+version+"\n") {
		if err := os.WriteFile(list, append(old, version+"\n"...), 0o644); err != nil {
			return "", err
		}
	}
	return path, nil
}
