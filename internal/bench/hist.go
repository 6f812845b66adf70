package bench

import (
	"encoding/json"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"time"
)

// subBits sets the histogram's precision: each power-of-two range of
// microseconds is split into 2^subBits buckets, so a recorded value is off
// by at most 1/2^subBits (≈1.6 %) of itself.
const subBits = 6

// Histogram records latencies in log-linear microsecond buckets (as HDR
// histograms do). It is mergeable, so worker processes can send theirs to
// the coordinator, and compact: a few hundred buckets cover 1 µs to hours.
// The exact maximum is kept alongside. The zero value is empty and ready;
// it is not safe for concurrent use.
type Histogram struct {
	counts map[int]uint64
	n      uint64
	max    time.Duration
	sum    time.Duration
}

// bucketOf maps a value in microseconds to its bucket index.
func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	exp := bits.Len64(us) - 1 - subBits // ≥ 0
	mant := us >> uint(exp)             // in [2^subBits, 2^(subBits+1))
	return (exp+1)<<subBits + int(mant-(1<<subBits))
}

// bucketHigh is the largest microsecond value that falls into bucket b.
func bucketHigh(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	exp := b>>subBits - 1
	mant := uint64(b&(1<<subBits-1)) + 1<<subBits
	return (mant+1)<<uint(exp) - 1
}

// Record adds one latency; negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.counts == nil {
		h.counts = make(map[int]uint64)
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
	h.sum += d
	if d > h.max {
		h.max = d
	}
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make(map[int]uint64, len(o.counts))
	}
	for b, c := range o.counts {
		h.counts[b] += c
	}
	h.n += o.n
	h.sum += o.sum
	if o.max > h.max {
		h.max = o.max
	}
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average recorded value.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the value below which a fraction q (0..1) of the
// recorded values fall, as the upper edge of its bucket (never above Max).
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	keys := make([]int, 0, len(h.counts))
	for b := range h.counts {
		keys = append(keys, b)
	}
	sort.Ints(keys)
	var seen uint64
	for _, b := range keys {
		seen += h.counts[b]
		if seen >= rank {
			d := time.Duration(bucketHigh(b)) * time.Microsecond
			if d > h.max {
				d = h.max
			}
			return d
		}
	}
	return h.max
}

// histJSON is the wire form of a Histogram between processes.
type histJSON struct {
	Counts map[string]uint64 `json:"counts"`
	N      uint64            `json:"n"`
	MaxNS  int64             `json:"maxNs"`
	SumNS  int64             `json:"sumNs"`
}

// MarshalJSON implements json.Marshaler.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	out := histJSON{Counts: make(map[string]uint64, len(h.counts)), N: h.n, MaxNS: int64(h.max), SumNS: int64(h.sum)}
	for b, c := range h.counts {
		out.Counts[strconv.Itoa(b)] = c
	}
	return json.Marshal(out)
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var in histJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*h = Histogram{counts: make(map[int]uint64, len(in.Counts)), n: in.N, max: time.Duration(in.MaxNS), sum: time.Duration(in.SumNS)}
	for k, c := range in.Counts {
		b, err := strconv.Atoi(k)
		if err != nil {
			return err
		}
		h.counts[b] = c
	}
	return nil
}

// Latency is the summary of a Histogram reported to users, in
// milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMS float64 `json:"meanMs"`
	P50MS  float64 `json:"p50Ms"`
	P90MS  float64 `json:"p90Ms"`
	P95MS  float64 `json:"p95Ms"`
	P99MS  float64 `json:"p99Ms"`
	MaxMS  float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summary returns the count, mean, p50, p90, p95, p99 and max.
func (h *Histogram) Summary() Latency {
	return Latency{Count: h.n, MeanMS: ms(h.Mean()), P50MS: ms(h.Quantile(0.50)), P90MS: ms(h.Quantile(0.90)), P95MS: ms(h.Quantile(0.95)),
		P99MS: ms(h.Quantile(0.99)), MaxMS: ms(h.max)}
}
