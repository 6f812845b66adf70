package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…
// -X main.buildDate=…" (make build does); otherwise they come from the
// module's build info, so `go install …/cmd/tandem@v1.2.3` reports v1.2.3.
var (
	version   = "dev"
	commit    = ""
	buildDate = ""
)

// buildInfo is what `tandem version --json` prints and the
// tandem_build_info metric carries.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	BuildDate string `json:"buildDate"`
	Modified  bool   `json:"modified"`
}

// currentBuild merges the ldflags values with runtime/debug's build info:
// ldflags win; the module version fills a "dev" version, and the VCS
// stamps fill the commit and date.
func currentBuild() buildInfo {
	return mergeBuild(version, commit, buildDate, readBuildInfo())
}

// readBuildInfo is debug.ReadBuildInfo, nil when the binary has none.
func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

func mergeBuild(ver, rev, date string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: ver, Commit: rev, BuildDate: date, GoVersion: runtime.Version()}
	if bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	if (b.Version == "" || b.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.BuildDate == "" {
				b.BuildDate = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// versionCmd prints the version, or with --json every build field.
func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tandem version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print version, commit, Go version and build date as JSON")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("version: unexpected argument %q", fs.Arg(0))}
	}
	b := currentBuild()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	fmt.Fprintf(stdout, "tandem %s", b.Version)
	if b.Commit != "" {
		fmt.Fprintf(stdout, " (%s", shortCommit(b.Commit))
		if b.Modified {
			fmt.Fprint(stdout, ", modified")
		}
		fmt.Fprint(stdout, ")")
	}
	fmt.Fprintf(stdout, " %s\n", b.GoVersion)
	return nil
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// registerBuildInfo adds tandem_build_info{version,commit,goversion} 1.
func registerBuildInfo(reg prometheus.Registerer, b buildInfo) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tandem_build_info",
		Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(b.Version, b.Commit, b.GoVersion).Set(1)
	reg.MustRegister(g)
}
