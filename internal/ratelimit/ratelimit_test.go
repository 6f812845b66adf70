package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewBucket(10, 3, now)
	for i := 0; i < 3; i++ {
		if ok, _, _ := b.Take(now); !ok {
			t.Fatalf("token %d refused", i)
		}
	}
	ok, _, retry := b.Take(now)
	if ok || retry != 100*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v retry=%v", ok, retry)
	}
	if ok, _, _ := b.Take(now.Add(100 * time.Millisecond)); !ok {
		t.Fatal("no token after refill")
	}
}

func TestLimiterKeys(t *testing.T) {
	l := &Limiter{Rate: 1, Burst: 1}
	now := time.Unix(0, 0)
	if ok, _, _ := l.Allow("a", now); !ok {
		t.Fatal("a refused")
	}
	if ok, _, _ := l.Allow("a", now); ok {
		t.Fatal("a allowed twice")
	}
	if ok, _, _ := l.Allow("b", now); !ok {
		t.Fatal("b limited by a")
	}
	var off *Limiter
	if ok, _, _ := off.Allow("x", now); !ok {
		t.Fatal("nil limiter limited")
	}
}
