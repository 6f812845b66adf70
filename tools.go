//go:build tools

// Package tools pins the code generators that `make generate` runs with
// `go run`, so nothing is installed globally.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
)
