// Package spec embeds Tandem's API contracts: the OpenAPI document for REST
// and the AsyncAPI document for the WebSocket protocol.
package spec

import _ "embed"

// OpenAPI is spec/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// AsyncAPI is spec/asyncapi.yaml.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
