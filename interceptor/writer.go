package interceptor

import (
	"net/http"
	"sync"
)

// corsWriter wraps the ResponseWriter of an actual request. Before the
// header is sent it restores the policy's CORS headers and drops the ones the
// wrapped handler set, so a response never carries two
// Access-Control-Allow-Origin values (improbable-eng/grpc-web#61,
// rs/cors#172). It keeps Flush and Unwrap, so [http.ResponseController] and
// streaming work through it. Writers are pooled: zero allocations per
// request.
type corsWriter struct {
	http.ResponseWriter
	acao, acac, aceh []string // the policy's values; nil means absent
	vary             []string // the Vary value the policy left in the header
	// fresh: the header map held only the policy's headers when next
	// started, so its length then is known (see fix).
	fresh       bool
	wroteHeader bool
}

var writerPool = sync.Pool{New: func() any { return new(corsWriter) }}

func getWriter(w http.ResponseWriter) *corsWriter {
	cw := writerPool.Get().(*corsWriter)
	cw.ResponseWriter = w
	return cw
}

func putWriter(cw *corsWriter) {
	*cw = corsWriter{}
	writerPool.Put(cw)
}

// fix makes the CORS headers exactly the policy's.
//
// The usual case costs a few lookups: when the map held nothing before the
// policy wrote its headers, still has as many keys as the policy wrote, and
// each of those keys still holds the very slice the policy stored (pointer
// comparison, no scan), then the map holds exactly the policy's headers and
// nothing is to be done. Otherwise every Access-Control-* header a response
// could carry is looked up by its canonical name (http.Header.Set and Add
// canonicalize), which costs less than walking the map.
func (cw *corsWriter) fix() {
	hdr := cw.ResponseWriter.Header()
	if cw.fresh && len(hdr) == cw.count() && cw.intact(hdr) {
		return
	}
	restore(hdr, hACAO, cw.acao)
	restore(hdr, hACAC, cw.acac)
	restore(hdr, hACEH, cw.aceh)
	// Preflight-only headers mean nothing on an actual response; drop them
	// so the response says only what the policy says.
	for _, k := range [...]string{hACAM, hACAH, hMaxAge, hACAPN} {
		delete(hdr, k)
	}
	if v, ok := hdr[hVary]; !ok || (!sameSlice(v, valueVaryOrigin) && !varyHasOrigin(v)) {
		setVary(hdr, valueVaryOrigin)
	}
}

// count is the number of headers the policy wrote: Vary and each of ACAO,
// ACAC and ACEH it set.
func (cw *corsWriter) count() int {
	n := 1
	if cw.acao != nil {
		n++
	}
	if cw.acac != nil {
		n++
	}
	if cw.aceh != nil {
		n++
	}
	return n
}

// intact reports whether each header the policy wrote still holds the
// policy's slice.
func (cw *corsWriter) intact(hdr http.Header) bool {
	return sameSlice(hdr[hVary], cw.vary) &&
		(cw.acao == nil || sameSlice(hdr[hACAO], cw.acao)) &&
		(cw.aceh == nil || sameSlice(hdr[hACEH], cw.aceh)) &&
		(cw.acac == nil || sameSlice(hdr[hACAC], cw.acac))
}

// sameSlice reports whether have is the slice want (same first element and
// length), without comparing contents.
func sameSlice(have, want []string) bool {
	return len(have) == len(want) && len(have) > 0 && &have[0] == &want[0]
}

// restore sets key to want (deletes it when want is nil) unless it already
// holds exactly the policy's slice.
func restore(hdr http.Header, key string, want []string) {
	if want == nil {
		delete(hdr, key)
		return
	}
	if have := hdr[key]; len(have) != 1 || &have[0] != &want[0] {
		hdr[key] = want
	}
}

// varyHasOrigin reports whether a Vary header lists Origin (or "*").
func varyHasOrigin(values []string) bool {
	for _, v := range values {
		s := headerScanner{lines: []string{v}}
		for {
			name, ok := s.next()
			if !ok {
				break
			}
			if name == "*" || equalFoldASCII(name, "origin") {
				return true
			}
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// WriteHeader restores the CORS headers, then writes the status.
func (cw *corsWriter) WriteHeader(code int) {
	if !cw.wroteHeader {
		cw.fix()
		if code >= 200 || code == http.StatusSwitchingProtocols {
			cw.wroteHeader = true
		}
	}
	cw.ResponseWriter.WriteHeader(code)
}

// Write writes body bytes, sending the header first if needed.
func (cw *corsWriter) Write(b []byte) (int, error) {
	if !cw.wroteHeader {
		cw.fix()
		cw.wroteHeader = true
	}
	return cw.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client; a no-op when the underlying
// writer cannot flush.
func (cw *corsWriter) Flush() {
	_ = cw.FlushError()
}

// FlushError is Flush that reports the error, as [http.ResponseController]
// prefers.
func (cw *corsWriter) FlushError() error {
	if !cw.wroteHeader {
		cw.fix()
		cw.wroteHeader = true
	}
	return http.NewResponseController(cw.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (cw *corsWriter) Unwrap() http.ResponseWriter {
	return cw.ResponseWriter
}
