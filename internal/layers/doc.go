// Package layers holds no code: its test pins the import arrows of
// ../shared/DESIGN.md's layering rule (transports → app → engines), so a
// change that breaks them fails `make test`.
package layers
