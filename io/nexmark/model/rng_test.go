package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// countingPCG counts the values drawn from a PCG.
type countingPCG struct {
	rand.PCG
	draws int
}

func (c *countingPCG) Uint64() uint64 {
	c.draws++
	return c.PCG.Uint64()
}

// rng returns what rand.Rand returns over the same PCG, draw for draw, and
// leaves the PCG in the same state, for every kind of bound: 1, powers of
// two, small ones, the generator's constants, and large ones near 2^62 and
// 2^63 for which a quarter to a half of the draws are rejected.
func TestRNGMatchesRand(t *testing.T) {
	bounds := []uint64{1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13 * 26, 1000, 10000, 1 << 16, 65536 - 19,
		1<<31 - 1, 1 << 31, 1<<32 + 1, 1<<52 + 3, 1<<62 - 1, 1 << 62, 1<<62 + 1, 3 << 61, 1<<63 - 1,
		1 << 63, 1<<63 + 1, 3 << 62, math.MaxUint64}
	for seed := range uint64(8) {
		a, b := seed*0x9e3779b97f4a7c15, ^seed
		src := &countingPCG{PCG: *rand.NewPCG(a, b)}
		want := rand.New(src)
		var got rng
		got.Seed(a, b)
		values := 0
		for i := range 30000 {
			n := bounds[i%len(bounds)]
			var g, w any
			switch i / len(bounds) % 4 {
			case 0:
				if n > math.MaxInt64 {
					continue
				}
				g, w = got.Int64N(int64(n)), want.Int64N(int64(n))
			case 1:
				if n > math.MaxInt {
					continue
				}
				g, w = got.IntN(int(n)), want.IntN(int(n))
			case 2:
				g, w = got.uint64n(n), want.Uint64N(n)
			case 3:
				g, w = got.Float64(), want.Float64()
			}
			values++
			if g != w {
				t.Fatalf("seed %d, value %d, bound %d: got %v, want %v", seed, i, n, g, w)
			}
			if got.pcg != src.PCG {
				t.Fatalf("seed %d, value %d, bound %d: rng and rand.Rand drew different numbers of values", seed, i, n)
			}
		}
		if rejected := src.draws - values; rejected < values/100 {
			t.Errorf("seed %d: %d draws rejected of %d: too few to test rejection", seed, rejected, src.draws)
		}
	}
}
