package interceptor

// strIndex is an immutable set of strings, each found by its position in
// the key list it was built from. It is built once (by [New] and
// [Policy.Handler]) and replaces a Go map on the hot path, where a map
// would hash the whole key and then call into the runtime to compare it.
// A lookup here reads the key as 64-bit words: the first and last eight
// bytes give the hash (one multiplication) and, with the length, decide
// keys of up to 16 bytes outright; longer keys are compared once, with the
// one candidate whose words matched. Lookups never allocate.
//
// With fold set, keys are stored lowercase and lookups ignore ASCII case
// (header names): words are lowercased eight bytes at a time.
//
// The table is open-addressed with linear probing and at most half full, so
// a lookup ends at the first empty slot; the seed is chosen at build time
// so that, where possible, every key sits in its own first slot. Hostile
// input costs at most one word comparison per key in a probe run.
type strIndex struct {
	slots []indexSlot
	seed  uint64 // odd multiplier
	shift uint   // 64 - log2(len(slots))
	fold  bool
}

// indexSlot holds a key with its words and position, so a lookup reads
// one slot.
type indexSlot struct {
	lo, hi uint64 // words of key, see words
	key    string
	pos    int // 1 + position in the key list; 0 marks an empty slot
}

// newStrIndex builds an index of keys (lowercased when fold). Duplicate keys
// keep their first position; callers pass distinct keys. The zero strIndex
// (and the index of no keys) finds nothing. A strIndex is a value so that
// its fields sit in the struct that holds it: one load fewer per lookup.
func newStrIndex(keys []string, fold bool) strIndex {
	x := strIndex{fold: fold}
	if len(keys) == 0 {
		return x
	}
	if fold {
		lower := make([]string, len(keys))
		for i, k := range keys {
			lower[i] = toLowerASCII(k)
		}
		keys = lower
	}
	size, bits := 8, uint(3)
	for size < 2*len(keys) {
		size, bits = size*2, bits+1
	}
	// Seeds come from a fixed sequence (splitmix64), so a table is the same
	// in every run. For small sets (the usual case: a few origins, a few
	// dozen header names or procedures) look for a seed that puts every key
	// in its own slot, widening the table a few times; past that, or for
	// large sets, keep the last try, which still answers correctly through
	// probing at a load of at most one half.
	tries, widenings := 64, 3
	if len(keys) > 64 {
		tries, widenings = 1, 0
	}
	state := uint64(0x9e3779b97f4a7c15)
	for widen := 0; ; widen++ {
		x.slots, x.shift = make([]indexSlot, size), 64-bits
		for range tries {
			state += 0x9e3779b97f4a7c15
			z := state
			z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
			z = (z ^ z>>27) * 0x94d049bb133111eb
			x.seed = (z ^ z>>31) | 1
			if x.fill(keys) {
				return x
			}
		}
		if widen == widenings {
			return x
		}
		size, bits = size*2, bits+1
	}
}

// fill places every key with the current seed and reports whether none
// needed probing.
func (x *strIndex) fill(keys []string) bool {
	clear(x.slots)
	perfect := true
	mask := uint64(len(x.slots) - 1)
	for i, k := range keys {
		if x.find(k) >= 0 {
			continue // duplicate
		}
		lo, hi := words(k)
		j := x.slot(lo, hi, len(k))
		if x.slots[j].pos != 0 {
			perfect = false
			for x.slots[j].pos != 0 {
				j = (j + 1) & mask
			}
		}
		x.slots[j] = indexSlot{lo: lo, hi: hi, key: k, pos: i + 1}
	}
	return perfect
}

// slot returns the first slot for a key with words lo, hi and length n.
// The shift is below 64; the mask says so to the compiler, which then
// emits a bare shift.
func (x *strIndex) slot(lo, hi uint64, n int) uint64 {
	return ((lo ^ (hi<<29 | hi>>35) ^ uint64(n)) * x.seed) >> (x.shift & 63)
}

// find returns the position of s in the key list, or -1.
func (x *strIndex) find(s string) int {
	n := len(s)
	if len(x.slots) == 0 {
		return -1
	}
	var lo, hi uint64
	if n >= 8 {
		lo, hi = load64(s, 0), load64(s, n-8) // inline: the usual case
	} else {
		lo, hi = words(s)
	}
	if x.fold {
		lo, hi = lowerWord(lo), lowerWord(hi)
	}
	mask := uint64(len(x.slots) - 1)
	for j := x.slot(lo, hi, n); ; j = (j + 1) & mask {
		e := &x.slots[j]
		if e.pos == 0 {
			return -1
		}
		if e.lo != lo || e.hi != hi || len(e.key) != n {
			continue
		}
		// lo and hi hold all of s up to 16 bytes; past that, the bytes
		// between them decide.
		switch {
		case n <= 16:
			return e.pos - 1
		case !x.fold:
			if s == e.key {
				return e.pos - 1
			}
		case middleEqualFold(s, e.key):
			return e.pos - 1
		}
	}
}

// middleEqualFold compares s[8:len-8], lowercased, with key's, for keys
// longer than 16 bytes whose first and last words already matched. It reads
// eight bytes at a time; the last read may overlap the final eight bytes,
// which is harmless.
func middleEqualFold(s, key string) bool {
	for i := 8; i < len(s)-8; i += 8 {
		if lowerWord(load64(s, i)) != load64(key, i) {
			return false
		}
	}
	return true
}

// words packs s into two words that, with len(s), determine s when
// len(s) <= 16: the first and the last eight bytes (they overlap below 16),
// or for shorter strings overlapping 4-byte or single-byte reads.
func words(s string) (lo, hi uint64) {
	switch n := len(s); {
	case n >= 8:
		return load64(s, 0), load64(s, n-8)
	case n >= 4:
		return uint64(load32(s, 0)) | uint64(load32(s, n-4))<<32, 0
	case n > 0:
		return uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16, 0
	}
	return 0, 0
}

// load64 reads s[i:i+8] little-endian; the compiler makes it one load.
func load64(s string, i int) uint64 {
	s = s[i : i+8] // one bounds check; the reads below need none
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// load32 reads s[i:i+4] little-endian.
func load32(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// lowerWord lowercases the ASCII letters among the eight bytes of w and
// leaves every other byte alone.
func lowerWord(w uint64) uint64 {
	const ones = 0x0101010101010101
	h := w & (0x7f * ones)                 // no carries between bytes below
	ge := h + (0x80-'A')*ones              // high bit set where the byte >= 'A'
	gt := h + (0x80-'Z'-1)*ones            // high bit set where the byte > 'Z'
	upper := ge &^ gt &^ w & (0x80 * ones) // 'A'..'Z', and ASCII to begin with
	return w | upper>>2                    // 0x80>>2 is the case bit 0x20
}

// toLowerASCII lowercases the ASCII letters of s.
func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
