package main

// Hook configuration: the global hooks are flags, each namespace of the
// YAML file may set its own (hook-subscribe, hook-publish, hook-rpc, their
// -timeout and -on-error, rpc-methods).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/app"
)

// hookNames are the hooks, in flag order; connect is global only,
// nsHookNames those a namespace may set too.
var (
	hookNames   = []app.HookKind{app.HookConnect, app.HookSubscribe, app.HookPublish, app.HookRPC}
	nsHookNames = hookNames[1:]
)

// hookTargets are the hooks a namespace's options hold, by kind.
func hookTargets(o *app.ChannelOptions) map[app.HookKind]*app.HookConfig {
	return map[app.HookKind]*app.HookConfig{app.HookSubscribe: &o.Subscribe, app.HookPublish: &o.Publish, app.HookRPC: &o.RPC}
}

// hookFlags are the hook settings of `tandem serve`.
type hookFlags struct {
	URL      map[app.HookKind]*string
	Timeout  map[app.HookKind]*time.Duration
	OnError  map[app.HookKind]*string
	Default  time.Duration // --hook-timeout
	Failure  string        // --hook-on-error
	Secret   string
	Private  bool
	Methods  string
	MaxConc  int
	MaxQueue int
}

func (h *hookFlags) register(fs *flag.FlagSet) {
	h.URL, h.Timeout, h.OnError = map[app.HookKind]*string{}, map[app.HookKind]*time.Duration{}, map[app.HookKind]*string{}
	for _, k := range hookNames {
		h.URL[k] = fs.String("hook-"+string(k), "", fmt.Sprintf("URL of the %s hook (per namespace: hook-%s; see docs/hooks.md)", k, k))
		h.Timeout[k] = fs.Duration("hook-"+string(k)+"-timeout", 0, fmt.Sprintf("timeout of the %s hook (0: --hook-timeout)", k))
		if k != app.HookRPC {
			h.OnError[k] = fs.String("hook-"+string(k)+"-on-error", "", fmt.Sprintf("when the %s hook fails: deny or allow (\"\": --hook-on-error)", k))
		}
	}
	fs.DurationVar(&h.Default, "hook-timeout", app.DefaultHookTimeout, "timeout of every hook call, its wait for a free slot included (per namespace: hook-timeout)")
	fs.StringVar(&h.Failure, "hook-on-error", string(app.FailDeny), "when a hook fails (timeout, error status, invalid answer, unreachable): deny (503 hook-unavailable) or allow (per namespace: hook-on-error)")
	fs.StringVar(&h.Secret, "hook-secret", "", "secret that signs every hook call (Standard Webhooks; required with any hook; comma-separated to sign with several while rotating)")
	fs.BoolVar(&h.Private, "hook-allow-private", false, "let hooks target loopback and private addresses (refused by default: SSRF)")
	fs.StringVar(&h.Methods, "rpc-methods", "", "comma-separated RPC methods the global RPC hook accepts (\"\": any; per namespace: rpc-methods)")
	fs.IntVar(&h.MaxConc, "hook-max-concurrent", app.DefaultHookMaxConcurrent, "calls in flight to one hook URL")
	fs.IntVar(&h.MaxQueue, "hook-max-queued", app.DefaultHookMaxQueued, "calls waiting for one hook URL (0: none may wait); beyond, 503 at once")
}

// config is the hook config of kind from the flags (none when the flags
// were never registered, as for a serveConfig built by hand).
func (h *hookFlags) config(k app.HookKind) (app.HookConfig, error) {
	if h.URL == nil {
		return app.HookConfig{}, nil
	}
	c := app.HookConfig{URL: *h.URL[k], Timeout: h.Default, OnError: app.HookFailure(h.Failure)}
	if t := *h.Timeout[k]; t != 0 {
		c.Timeout = t
	}
	if p := h.OnError[k]; p != nil && *p != "" {
		c.OnError = app.HookFailure(*p)
	}
	return c, checkHook("--hook-"+string(k), c)
}

func checkFailure(v string) error {
	if f := app.HookFailure(v); f != app.FailDeny && f != app.FailAllow {
		return fmt.Errorf("%q: use deny or allow", v)
	}
	return nil
}

func checkHook(name string, c app.HookConfig) error {
	if err := checkFailure(string(c.OnError)); err != nil {
		return fmt.Errorf("%s: on-error %w", name, err)
	}
	if c.Timeout < time.Millisecond {
		return fmt.Errorf("%s: timeout %v: must be at least 1ms", name, c.Timeout)
	}
	return nil
}

// globalHooks fills ns.Default with the global subscribe, publish and rpc
// hooks (the connect hook is hookOptions'). Errors: a bad failure mode or
// timeout.
func (h *hookFlags) globalHooks(ns *app.Namespaces) error {
	targets := hookTargets(&ns.Default)
	for _, k := range nsHookNames {
		c, err := h.config(k)
		if err != nil {
			return err
		}
		*targets[k] = c
	}
	ns.Default.RPCMethods = splitList(h.Methods)
	return nil
}

// namespaceHook applies one hook option of a namespace's YAML mapping to
// o; false: k is not a hook option. Hooks a namespace does not set are
// the global ones (o starts as the defaults). set records the per-hook
// settings seen, which win over hook-timeout and hook-on-error whatever
// the order of the keys.
func namespaceHook(o *app.ChannelOptions, k, v string, set map[string]bool) (bool, error) {
	target := hookTargets(o)
	switch {
	case k == "rpc-methods":
		o.RPCMethods = splitList(strings.Trim(v, "[]"))
		return true, nil
	case k == "hook-timeout":
		d, err := time.ParseDuration(v)
		for name, c := range target {
			if !set["timeout:"+string(name)] {
				c.Timeout = d
			}
		}
		return true, err
	case k == "hook-on-error":
		if err := checkFailure(v); err != nil {
			return true, err
		}
		for name, c := range target {
			if !set["on-error:"+string(name)] {
				c.OnError = app.HookFailure(v)
			}
		}
		return true, nil
	}
	rest, ok := strings.CutPrefix(k, "hook-")
	if !ok {
		return false, nil
	}
	name, opt, _ := strings.Cut(rest, "-")
	c := target[app.HookKind(name)]
	if c == nil {
		return false, nil
	}
	switch opt {
	case "":
		c.URL = v
	case "timeout":
		d, err := time.ParseDuration(v)
		c.Timeout = d
		set["timeout:"+name] = true
		return true, err
	case "on-error":
		c.OnError = app.HookFailure(v)
		set["on-error:"+name] = true
		return true, checkFailure(v)
	default:
		return false, nil
	}
	return true, nil
}

// checkHookURLs checks every configured hook URL as a webhook's (SSRF
// rules unless --hook-allow-private), and that calls are signed; some
// reports whether any hook is configured.
func checkHookURLs(ctx context.Context, h *hookFlags, connect app.HookConfig, ns app.Namespaces, check func(context.Context, string) error) (some bool, err error) {
	type named struct {
		name string
		c    app.HookConfig
	}
	all := []named{{"--hook-connect", connect}}
	add := func(prefix string, o app.ChannelOptions) {
		targets := hookTargets(&o)
		for _, k := range nsHookNames {
			all = append(all, named{prefix + "hook-" + string(k), *targets[k]})
		}
	}
	add("--", ns.Default)
	for n, o := range ns.ByName {
		add("namespaces."+n+".", o)
	}
	for _, x := range all {
		if !x.c.Enabled() {
			continue
		}
		some = true
		if err := checkHook(x.name, x.c); err != nil {
			return some, err
		}
		if err := check(ctx, x.c.URL); err != nil {
			return some, fmt.Errorf("%s %q: %w", x.name, x.c.URL, err)
		}
	}
	if some && strings.TrimSpace(h.Secret) == "" {
		return some, errors.New("hooks are configured but --hook-secret is not: every hook call is signed (set TANDEM_HOOK_SECRET or --hook-secret)")
	}
	if h.MaxConc < 1 || h.MaxQueue < 0 {
		return some, fmt.Errorf("--hook-max-concurrent %d / --hook-max-queued %d: at least 1 and 0", h.MaxConc, h.MaxQueue)
	}
	return some, nil
}
