package tandem

import (
	"math/rand/v2"
	"time"
)

// Backoff is the reconnect schedule: attempt n waits a random duration in
// [d/2, d] with d = min(Max, Min·2ⁿ) ("equal jitter"), so clients that lost
// the same server do not come back in lockstep.
type Backoff struct {
	Min, Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 250 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = max(b.Min, 30*time.Second)
	}
	return b
}

// Delay returns the wait before reconnect attempt n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := b.Max
	if n < 62 {
		if x := b.Min << n; x > 0 && x < b.Max {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
