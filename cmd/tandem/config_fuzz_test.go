package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParseConfigYAML: the YAML config reader never panics; what it
// accepts is flat string values that read back identically when written
// out again, and its namespace overrides never make namespaces() panic.
func FuzzParseConfigYAML(f *testing.F) {
	for _, s := range []string{
		"addr: 127.0.0.1:7000\nlog-level: debug\nmax-body-bytes: 2048\nstrict: true\n",
		"namespaces:\n  chat:\n    history: 50\n    presence: false\n  iot:\n    history-ttl: 1m\n    publish: no\n",
		"namespaces: 7\n", "namespaces:\n  a: [1]\n", "addr: [1, 2]\n", "x: {a: 1}\n", "~\n", "",
		"a: &x 1\nb: *x\n", "? [a]\n: b\n", "addr: !!binary aGk=\n", "- 1\n- 2\n", "a: 1e999\nb: .nan\n",
		"namespaces:\n  \"bad name\":\n    history: 1\n", "namespaces:\n  n:\n    history: -1\n    max-message-bytes: x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		values, ns, err := parseConfigYAML(raw)
		if err != nil {
			return
		}
		if len(values) > 0 {
			out, err := yaml.Marshal(values)
			if err != nil {
				t.Fatalf("re-encode %v: %v", values, err)
			}
			again, _, err := parseConfigYAML(out)
			if err != nil || !reflect.DeepEqual(again, values) {
				t.Fatalf("values %q do not read back: %q %v", values, again, err)
			}
		}
		c := serveConfig{namespaceOverrides: ns}
		_, _ = c.namespaces()
	})
}

// FuzzParseServeConfig: flags, environment and config file together never
// panic parseServeConfig, and a configuration it accepts passes the
// protected-mode check or fails it with an error, never a panic.
func FuzzParseServeConfig(f *testing.F) {
	f.Add("--addr 127.0.0.1:0 --rate-limit 0", "TANDEM_LOG_LEVEL=debug", "strict: true\n")
	f.Add("--addr 0.0.0.0:80", "", "")
	f.Add("--addr [::1]:1 --jwt-secret 0123456789abcdef0123456789abcdef", "TANDEM_MAX_BODY_BYTES=-1", "ping-interval: 1ns\n")
	f.Add("-h", "", "")
	f.Add("--config", "", "")
	f.Add("", "TANDEM_QUEUE_BYTES=x", "")
	f.Add("", "", "config: other.yaml\n")
	f.Add("--addr", "TANDEM_ADDR=:::", "namespaces:\n  a:\n    history: 1\n")
	f.Fuzz(func(t *testing.T, args, env, file string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "tandem.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{"TANDEM_CONFIG": path}
		for _, kv := range strings.Split(env, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
		c, err := parseServeConfig(strings.Fields(args), func(k string) string { return vars[k] }, io.Discard)
		if err != nil {
			return
		}
		_ = checkProtectedMode(c)
		_, _ = c.namespaces()
	})
}
