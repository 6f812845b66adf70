package app

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// RPCRequest is a decoded rpc frame.
type RPCRequest struct {
	Method string
	// Data is the request's data (nil: none; the hook gets no data).
	Data   json.RawMessage
	Client ClientInfo
}

// RPC forwards a call to the RPC hook of the method's namespace (the part
// of its name before the first ':'; without one, the global RPC hook) and
// returns the application's result (JSON null when it gave none). It
// takes the call grant on rpc/{method}. Errors: store.ErrInvalid (a bad
// method name), store.ErrNotFound (no RPC hook for the namespace, or a
// method its allow-list does not name), auth errors, store.CodeTooLarge
// (data over the namespace's max-message-bytes), *HookDeniedError (the
// application's problem), *HookFailedError (no valid answer in time, or
// the hook is overloaded), ctx.Err().
func (a *App) RPC(ctx context.Context, p auth.Principal, req RPCRequest) (json.RawMessage, error) {
	if !stream.ValidChannel(req.Method) { // the same rules as a channel name
		return nil, &InputError{Name: "method", Detail: "must be 1–128 letters, digits, '.', '_', '-' or ':', starting with a letter or digit"}
	}
	ns := a.rt.Namespaces.For(req.Method)
	if !ns.RPC.Enabled() || a.hooks.opts.Caller == nil {
		return nil, store.Errorf(store.CodeNotFound, "no RPC method %q: no RPC hook is configured for its namespace", clip(req.Method))
	}
	if len(ns.RPCMethods) > 0 && !slices.Contains(ns.RPCMethods, "*") && !slices.Contains(ns.RPCMethods, req.Method) {
		return nil, store.Errorf(store.CodeNotFound, "no RPC method %q: its namespace allows %s", clip(req.Method), strings.Join(ns.RPCMethods, ", "))
	}
	if err := a.Authorize(p, auth.ActionCall, "rpc/"+req.Method); err != nil {
		return nil, err
	}
	if ns.MaxMessageBytes > 0 && len(req.Data) > ns.MaxMessageBytes {
		return nil, store.Errorf(store.CodeTooLarge, "rpc data of %d bytes exceeds the limit of %d bytes", len(req.Data), ns.MaxMessageBytes)
	}
	reply, _, err := a.callHook(ctx, ns.RPC, HookCall{Kind: HookRPC, Principal: p, Client: req.Client, Method: req.Method, Data: req.Data})
	if err != nil {
		return nil, err
	}
	if reply.Data == nil {
		return json.RawMessage("null"), nil
	}
	return reply.Data, nil
}
