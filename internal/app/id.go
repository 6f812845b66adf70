package app

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGen makes 26-character, lexicographically sortable IDs (ULID layout:
// 48-bit millisecond time, 80 random bits), monotonic within one process.
type idGen struct {
	mu     sync.Mutex
	lastMs uint64
	hi     uint16 // top 16 bits of the random part
	lo     uint64 // low 64 bits of the random part
}

func (g *idGen) next(now time.Time) string {
	g.mu.Lock()
	ms := uint64(now.UnixMilli())
	if ms <= g.lastMs {
		ms = g.lastMs
		g.lo++
		if g.lo == 0 {
			g.hi++
		}
	} else {
		var b [10]byte
		_, _ = rand.Read(b[:])
		g.hi = binary.BigEndian.Uint16(b[:2])
		g.lo = binary.BigEndian.Uint64(b[2:])
		g.lastMs = ms
	}
	hi, lo := g.hi, g.lo
	g.mu.Unlock()

	var raw [16]byte
	raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	binary.BigEndian.PutUint16(raw[6:8], hi)
	binary.BigEndian.PutUint64(raw[8:], lo)
	// 128 bits → 26 base32 digits, most significant first (first digit holds 3 bits).
	var out [26]byte
	var acc uint64
	bits := 0
	i := 25
	for j := 15; j >= 0; j-- {
		acc |= uint64(raw[j]) << bits
		bits += 8
		for bits >= 5 && i >= 0 {
			out[i] = crockford[acc&31]
			acc >>= 5
			bits -= 5
			i--
		}
	}
	if i >= 0 {
		out[i] = crockford[acc&31]
	}
	return string(out[:])
}

// randomNode names a node that was given no name.
func randomNode() string { return "node-" + randomHex(8) }

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
