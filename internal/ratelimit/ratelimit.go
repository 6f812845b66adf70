// Package ratelimit holds token buckets keyed by client, for per-key REST
// limits and per-connection WebSocket frame limits.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Bucket is one token bucket; the zero value is unusable, use NewBucket.
type Bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket refilling at rate per second up to burst.
func NewBucket(rate float64, burst int, now time.Time) *Bucket {
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// Take takes one token. It returns whether one was available, the tokens
// left, and how long until the next token when none was.
func (b *Bucket) Take(now time.Time) (ok bool, remaining int, retry time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.burst, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, int(b.tokens), 0
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return false, 0, wait
}

// full reports whether the bucket has refilled completely (it can be
// forgotten without changing behaviour).
func (b *Bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst
}

// Limiter keeps one bucket per key. Rate 0 disables it.
type Limiter struct {
	Rate  float64
	Burst int

	mu      sync.Mutex
	buckets map[string]*Bucket
}

// Allow takes a token for key; see Bucket.Take.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, remaining int, retry time.Duration) {
	if l == nil || l.Rate <= 0 {
		return true, l.burst(), 0
	}
	l.mu.Lock()
	if l.buckets == nil {
		l.buckets = map[string]*Bucket{}
	}
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= 100000 {
			for k, old := range l.buckets {
				if old.full(now) {
					delete(l.buckets, k)
				}
			}
		}
		b = NewBucket(l.Rate, l.Burst, now)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	return b.Take(now)
}

func (l *Limiter) burst() int {
	if l == nil {
		return 0
	}
	return l.Burst
}
