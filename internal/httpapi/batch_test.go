package httpapi

import (
	"testing"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/wire"
)

func TestWithOperation(t *testing.T) {
	tests := []struct {
		name     string
		pointers []string
		want     int // -1: none
	}{
		{"None", nil, -1},
		{"NotABatch", []string{"/data/qty"}, -1},
		{"One", []string{"/operations/3/op"}, 3},
		{"Smallest", []string{"/operations/10/op", "/operations/3/data/x", "/name"}, 3},
		{"Member", []string{"/operations"}, -1},
		{"Garbage", []string{"/operations/x/op", "/operations/-1"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fields []api.ProblemField
			for _, p := range tt.pointers {
				fields = append(fields, wire.BodyField(p, "bad"))
			}
			p := withOperation(wire.NewProblem(wire.KindInvalid, "bad", fields))
			if got := p.Operation; (got == nil) != (tt.want < 0) || (got != nil && *got != tt.want) {
				t.Fatalf("operation = %v, want %d", got, tt.want)
			}
		})
	}
}
