package app

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

// BenchmarkWrites100 compares 100 writes as one batch with 100 single
// writes, on SQLite (one op is 100 writes either way): a batch is one
// group-commit write (one fsync), the singles are 100 sequential writes.
//
//	go test ./internal/app -run '^$' -bench Writes100 -benchtime 20x
func BenchmarkWrites100(b *testing.B) {
	const n = 100
	for _, tt := range []struct {
		name  string
		write func(a *App, i int) error
	}{
		{"Batch", func(a *App, i int) error {
			ops := make([]BatchOp, n)
			for j := range ops {
				ops[j] = BatchOp{Kind: BatchPut, Collection: "orders", ID: fmt.Sprint("o-", j), Data: json.RawMessage(fmt.Sprintf(`{"item":"tea","qty":%d}`, i+1))}
			}
			_, err := a.Batch(b.Context(), everyone, ops)
			return err
		}},
		{"Single", func(a *App, i int) error {
			for j := range n {
				if _, _, err := a.ReplaceResource(b.Context(), everyone, "orders", fmt.Sprint("o-", j),
					json.RawMessage(fmt.Sprintf(`{"item":"tea","qty":%d}`, i+1)), nil, store.Precondition{}); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			a, _ := newBatchApp(b, Options{}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := tt.write(a, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
