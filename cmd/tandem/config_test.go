package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/app"
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

// TestConfigDuplicateKeys: a configuration file that gives a key twice is
// refused with an error naming the key (RFC 7493 §2.3 for the JSON files;
// the same rule for YAML): the config file, in YAML or JSON syntax, its
// namespace options, the API keys file, and the JWKS file.
func TestConfigDuplicateKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	none := func(string) string { return "" }
	for _, tc := range []struct{ name, file, want string }{
		{"TopLevel", "addr: 127.0.0.1:7000\nlog-level: debug\naddr: 127.0.0.1:7001\n", `duplicate key: line 3: mapping key "addr" already defined at line 1`},
		{"JSONSyntax", `{"addr": "127.0.0.1:7000", "addr": "127.0.0.1:7001"}`, `duplicate key: line 1: mapping key "addr"`},
		{"NamespaceOption", "namespaces:\n  chat:\n    history: 10\n    history: 20\n", `duplicate key: line 4: mapping key "history" already defined at line 3`},
		{"Namespace", "namespaces:\n  chat:\n    history: 10\n  chat:\n    presence: false\n", `mapping key "chat"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write(tc.name+".yaml", tc.file)
			_, err := parseServeConfig([]string{"--config", path}, none, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line naming %s with %q", err, path, tc.want)
			}
		})
	}
	t.Run("APIKeysFile", func(t *testing.T) {
		secret := "0123456789abcdef0123456789abcdef"
		path := write("keys.yaml", "keys:\n  - name: svc\n    key: "+secret+"\n    key: "+secret+"x\n")
		_, err := (serveConfig{APIKeysFile: path}).authenticator(nil)
		if err == nil || !strings.Contains(err.Error(), `mapping key "key" already defined at line 3`) {
			t.Fatalf("err = %v", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error leaks the key: %v", err)
		}
	})
	t.Run("JWKSFile", func(t *testing.T) {
		// The second "n" would silently replace the first.
		path := write("jwks.json", `{"keys":[{"kty":"RSA","kid":"k1","e":"AQAB","n":"AAAA","n":"BBBB"}]}`)
		_, err := (serveConfig{JWKSFile: path}).authenticator(nil)
		if err == nil || !strings.Contains(err.Error(), `/keys/0/n: duplicate member "n" at byte 55`) {
			t.Fatalf("err = %v", err)
		}
		path = write("jwks-number.json", `{"keys":[],"x":1e999}`)
		if _, err := (serveConfig{JWKSFile: path}).authenticator(nil); err == nil || !strings.Contains(err.Error(), "/x: number 1e999 is beyond the range") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestWebhookFlags: webhook timings that cannot work are refused before
// the server starts, naming the flag.
func TestWebhookFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--webhook-timeout", "0s"}, "--webhook-timeout"},
		{[]string{"--webhook-retry-min", "-1s"}, "--webhook-retry-min"},
		{[]string{"--webhook-retry-min", "2s", "--webhook-retry-max", "1s"}, "--webhook-retry-max"},
		{[]string{"--webhook-lease", "10ms"}, "--webhook-lease"},
		{[]string{"--webhook-failure-window", "0s"}, "--webhook-failure-window"},
		{[]string{"--webhook-secret-grace", "0s"}, "--webhook-secret-grace"},
		{[]string{"--max-webhooks", "0"}, "--max-webhooks"},
		{[]string{"--ws-write-delay", "-1ms"}, "--ws-write-delay"},
		{[]string{"--ws-write-delay", "2s"}, "--ws-write-delay"},
		{[]string{"--ws-writers", "-1"}, "--ws-writers"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
		err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.flag+" ") {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.flag)
		}
	}
}

func TestHookConfig(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "tandem.yaml")
	if err := os.WriteFile(cfgFile, []byte(`hook-timeout: 3s
hook-publish: http://127.0.0.1:1/pub
namespaces:
  game:
    hook-rpc: http://127.0.0.1:1/rpc
    hook-rpc-timeout: 500ms
    hook-timeout: 1s
    hook-on-error: allow
    hook-rpc-on-error: deny
    rpc-methods: [game:move, game:resign]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseServeConfig([]string{"--config", cfgFile}, func(string) string { return "" }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.namespaces()
	if err != nil {
		t.Fatal(err)
	}
	g := ns.ByName["game"]
	if ns.Default.Publish.URL != "http://127.0.0.1:1/pub" || ns.Default.Publish.Timeout != 3*time.Second || ns.Default.Publish.OnError != app.FailDeny {
		t.Errorf("global publish hook: %+v", ns.Default.Publish)
	}
	if g.RPC.URL != "http://127.0.0.1:1/rpc" || g.RPC.Timeout != 500*time.Millisecond || g.Publish.OnError != app.FailAllow || g.Publish.URL != ns.Default.Publish.URL ||
		strings.Join(g.RPCMethods, ",") != "game:move,game:resign" || g.Publish.Timeout != time.Second || g.RPC.OnError != app.FailDeny {
		t.Errorf("game namespace: %+v", g)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hook-publish", "http://127.0.0.1:1/p", "--hook-allow-private"}, "--hook-secret"},
		{[]string{"--hook-publish", "http://127.0.0.1:1/p", "--hook-secret", "whsec_" + strings.Repeat("QUFB", 8)}, "--hook-allow-private"}, // private target refused
		{[]string{"--hook-on-error", "maybe"}, "on-error"},
		{[]string{"--hook-secret", "nope", "--hook-publish", "http://127.0.0.1:1/p", "--hook-allow-private"}, "--hook-secret"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
		err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
