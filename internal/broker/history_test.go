package broker_test

import (
	"testing"

	"github.com/tandemhq/tandem/internal/broker"
)

func TestCheckSince(t *testing.T) {
	top := broker.Position{Epoch: "e1", Offset: 10}
	tests := []struct {
		name   string
		since  broker.Position
		oldest int64
		gone   bool
	}{
		{"OK/Empty", broker.Position{}, 8, false},
		{"OK/EmptyNothingRetained", broker.Position{}, 0, false},
		{"OK/AtTop", broker.Position{Epoch: "e1", Offset: 10}, 0, false},
		{"OK/OldestMinusOne", broker.Position{Epoch: "e1", Offset: 7}, 8, false},
		{"OK/FromZero", broker.Position{Epoch: "e1"}, 1, false},
		{"ErrGone/Trimmed", broker.Position{Epoch: "e1", Offset: 6}, 8, true},
		{"ErrGone/NothingRetained", broker.Position{Epoch: "e1", Offset: 9}, 0, true},
		{"ErrGone/OtherEpoch", broker.Position{Epoch: "e0", Offset: 10}, 1, true},
		{"ErrGone/OtherEpochZero", broker.Position{Epoch: "e0"}, 1, true},
		{"ErrGone/NoEpoch", broker.Position{Offset: 3}, 1, true},
		{"ErrGone/Future", broker.Position{Epoch: "e1", Offset: 11}, 1, true},
		{"ErrGone/Negative", broker.Position{Epoch: "e1", Offset: -1}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := broker.CheckSince(tc.since, top, tc.oldest)
			if (err == broker.ErrGone) != tc.gone || (err != nil && err != broker.ErrGone) {
				t.Fatalf("CheckSince(%+v, %+v, %d) = %v, want gone=%v", tc.since, top, tc.oldest, err, tc.gone)
			}
		})
	}
}
