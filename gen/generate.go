// Package gen holds code generated from spec/openapi.yaml by oapi-codegen;
// run `make generate` after editing the spec and never edit *.gen.go by hand.
package gen

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config api/cfg.yaml ../spec/openapi.yaml
//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config ../sdk/go/client/cfg.yaml ../spec/openapi.yaml
