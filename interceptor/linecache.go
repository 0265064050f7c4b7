package interceptor

import "sync/atomic"

// lineCacheWords bounds the lines a [lineCache] holds: 16 words, 128 bytes,
// room for the protocol's names and a few declared ones.
const lineCacheWords = 16

// lineCache remembers the last Access-Control-Request-Headers line a route
// granted, so that the line a browser sends again and again is checked by
// one comparison instead of a scan and a lookup per name. A route's allowed
// names never change, so a line granted once is granted every time.
//
// It is a sequence lock over atomic words. The line's bytes are copied in,
// eight to a word, so the cache owns its memory: an atomic pointer to a
// string would cost an allocation per store, and a pointer into the
// request's []string would see whatever other code later writes there.
// Every field is read and written atomically, so concurrent use is
// race-free; a reader that overlaps a store sees the sequence number change
// and reports a miss, and a store that finds another under way gives up.
// Neither allocates.
type lineCache struct {
	seq   atomic.Uint64 // odd while a store is under way
	n     atomic.Uint64 // length of the line; 0 when empty
	words [lineCacheWords]atomic.Uint64
}

// has reports whether line is the cached line. Lines shorter than eight
// bytes or longer than the cache are never cached.
func (c *lineCache) has(line string) bool {
	n := len(line)
	if n < 8 || n > 8*lineCacheWords {
		return false
	}
	seq := c.seq.Load()
	if seq&1 != 0 || c.n.Load() != uint64(n) {
		return false
	}
	// Word j holds line[8j:8j+8]; the last one holds the final eight
	// bytes, overlapping the word before it when n is not a multiple of 8.
	// last is below lineCacheWords: the mask below only tells the compiler.
	last := (n - 1) >> 3
	for j := range last {
		if c.words[j].Load() != load64(line, j<<3) {
			return false
		}
	}
	return c.words[last&(lineCacheWords-1)].Load() == load64(line, n-8) && c.seq.Load() == seq
}

// store makes line the cached line, unless it does not fit or another
// store is under way.
func (c *lineCache) store(line string) {
	n := len(line)
	if n < 8 || n > 8*lineCacheWords {
		return
	}
	seq := c.seq.Load()
	if seq&1 != 0 || !c.seq.CompareAndSwap(seq, seq+1) {
		return
	}
	last := (n - 1) >> 3
	for j := range last {
		c.words[j].Store(load64(line, j<<3))
	}
	c.words[last&(lineCacheWords-1)].Store(load64(line, n-8))
	c.n.Store(uint64(n))
	c.seq.Store(seq + 2)
}
