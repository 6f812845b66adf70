package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tandem.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:7000\nlog-level: debug\nmax-body-bytes: 2048\nstrict: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TANDEM_ADDR": "127.0.0.1:7001", "TANDEM_CONFIG": file, "TANDEM_LOG_FORMAT": "json"}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c serveConfig)
	}{
		{"Defaults", nil, func(t *testing.T, c serveConfig) {
			if c.Addr != "127.0.0.1:8080" || c.DataDir != "./tandem-data" {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"FlagBeatsEnvBeatsFile", []string{"--addr", "127.0.0.1:7002"}, func(t *testing.T, c serveConfig) {
			if c.Addr != "127.0.0.1:7002" {
				t.Errorf("addr = %s", c.Addr)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ge func(string) string = func(string) string { return "" }
			if tc.name != "Defaults" {
				ge = getenv
			}
			c, err := parseServeConfig(tc.args, ge, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	t.Run("EnvBeatsFile", func(t *testing.T) {
		c, err := parseServeConfig(nil, getenv, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Addr != "127.0.0.1:7001" || c.LogLevel != "debug" || c.LogFormat != "json" || c.MaxBodyBytes != 2048 || !c.Strict {
			t.Errorf("merged config: %+v", c)
		}
	})
	t.Run("ErrUnknownKey", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.yaml")
		_ = os.WriteFile(bad, []byte("adress: x\n"), 0o600)
		_, err := parseServeConfig([]string{"--config", bad}, func(string) string { return "" }, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), `unknown key "adress"`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ErrBadEnv", func(t *testing.T) {
		_, err := parseServeConfig(nil, func(k string) string {
			if k == "TANDEM_MAX_BODY_BYTES" {
				return "lots"
			}
			return ""
		}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "TANDEM_MAX_BODY_BYTES") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("ErrBadFlag", func(t *testing.T) {
		_, err := parseServeConfig([]string{"--nope"}, func(string) string { return "" }, &bytes.Buffer{})
		if err == nil {
			t.Error("no error for unknown flag")
		}
	})
}

func TestRunCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, os.Getenv, &out, &errb); err != nil || !strings.HasPrefix(out.String(), "tandem ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"frobnicate"}, os.Getenv, &out, &errb); err == nil || exitCode(err) != 2 {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(context.Background(), nil, os.Getenv, &out, &errb); err == nil {
		t.Error("no command: no error")
	}
}

func TestProtectedMode(t *testing.T) {
	tests := []struct {
		name string
		cfg  serveConfig
		ok   bool
	}{
		{"Loopback", serveConfig{Addr: "127.0.0.1:8080"}, true},
		{"LoopbackV6", serveConfig{Addr: "[::1]:8080"}, true},
		{"Localhost", serveConfig{Addr: "localhost:8080"}, true},
		{"ErrAllInterfaces", serveConfig{Addr: "0.0.0.0:8080"}, false},
		{"ErrEmptyHost", serveConfig{Addr: ":8080"}, false},
		{"Insecure", serveConfig{Addr: "0.0.0.0:8080", Insecure: true}, true},
		{"WithAuth", serveConfig{Addr: "0.0.0.0:8080", JWTSecret: "s"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkProtectedMode(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !strings.Contains(err.Error(), "--insecure") {
				t.Errorf("message does not explain the way out: %v", err)
			}
		})
	}
	// The real command refuses before binding anything.
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, func(string) string { return "" }, &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "protected mode") {
		t.Fatalf("serve on 0.0.0.0 without auth: %v", err)
	}
}
