// Package gosdk holds the tests of the Go SDK (module
// github.com/tandemhq/tandem/sdk/go) that need this repository: they run
// the SDK against real `tandem serve` processes built from cmd/tandem and
// against a scripted WebSocket server, and validate every REST response and
// WebSocket frame against spec/ with internal/specval. They live in the
// server's module so that the SDK module needs neither the server nor the
// validators; the SDK's own module keeps its runnable examples and the
// tests that need nothing but the SDK.
package gosdk
