package tandem

import (
	"testing"
	"time"
)

func TestRefreshDelay(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		left, want time.Duration
	}{
		{time.Hour, 45 * time.Minute},
		{4 * time.Second, 3 * time.Second},
		{2 * time.Second, 1500 * time.Millisecond},
		{time.Second, 500 * time.Millisecond}, // never at the expiry itself
		{300 * time.Millisecond, 50 * time.Millisecond},
		{-time.Second, 50 * time.Millisecond},
	} {
		if got := refreshDelay(now, now.Add(tc.left)); got != tc.want {
			t.Errorf("refreshDelay(%v left) = %v, want %v", tc.left, got, tc.want)
		}
	}
}
