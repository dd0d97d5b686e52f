package model

import (
	"math/bits"
	"math/rand/v2"
)

// rng is the generator's source of random numbers: a PCG with the few
// methods of rand.Rand the generator uses. It must return exactly what
// rand.New(&pcg) would, draw for draw, since every event is a function of
// the draws and must not change; TestRNGMatchesRand checks it.
//
// It exists for speed: rand.Rand calls its Source through an interface for
// every draw, and none of that inlines. Here the PCG step is inlined into
// uint64n and Float64, and IntN, Int64N and Seed into the generator.
// (uint64n itself cannot be: the PCG step alone nearly fills the inlining
// budget.)
type rng struct {
	pcg rand.PCG
}

// Seed reseeds the PCG, as rand.PCG.Seed does.
func (r *rng) Seed(seed1, seed2 uint64) { r.pcg.Seed(seed1, seed2) }

// IntN returns a uniform int in [0, n), as rand.Rand.IntN. It panics if
// n <= 0.
func (r *rng) IntN(n int) int {
	if n <= 0 {
		panic("model: rng.IntN: bound is not positive")
	}
	return int(r.uint64n(uint64(n)))
}

// Int64N returns a uniform int64 in [0, n), as rand.Rand.Int64N. It panics
// if n <= 0.
func (r *rng) Int64N(n int64) int64 {
	if n <= 0 {
		panic("model: rng.Int64N: bound is not positive")
	}
	return int64(r.uint64n(uint64(n)))
}

// Float64 returns a float64 in [0, 1), as rand.Rand.Float64: the low 53
// bits of a draw, scaled by 2^-53.
func (r *rng) Float64() float64 {
	return float64(r.pcg.Uint64()&(1<<53-1)) / (1 << 53)
}

// uint64n returns a uniform value in [0, n) for n > 0, by Lemire's method
// as math/rand/v2 does it: a power of two masks one draw; any other n takes
// the high word of the 128-bit product draw·n, drawing again while the low
// word falls in the first 2^64 mod n values, which would make the result
// biased. Only a low word below n can be one of those, so the rare retry
// and its division stay out of the inlined path.
//
// math/rand/v2 takes a 32-bit path for small n on 32-bit platforms, but it
// computes the same values, so one path serves every platform.
func (r *rng) uint64n(n uint64) uint64 {
	x := r.pcg.Uint64()
	if n&(n-1) == 0 {
		return x & (n - 1)
	}
	hi, lo := bits.Mul64(x, n)
	if lo < n {
		hi = r.retry(n, hi, lo)
	}
	return hi
}

// retry finishes uint64n when the first product's low word lo is below n:
// it keeps drawing while lo is below 2^64 mod n, then returns the high word.
func (r *rng) retry(n, hi, lo uint64) uint64 {
	thresh := -n % n
	for lo < thresh {
		hi, lo = bits.Mul64(r.pcg.Uint64(), n)
	}
	return hi
}
