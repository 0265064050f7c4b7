package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/corsgate/corsgate/interceptor"
)

// Bounds of the header message, the first message of a WebSocket stream.
const (
	// maxHeaderMessage is its size, as the HTTP server's header bound.
	maxHeaderMessage = 64 << 10
	// maxHeaderLines is how many headers it may hold.
	maxHeaderLines = 256
)

// tokenByte marks the bytes of an HTTP field name (RFC 9110 token).
var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// parseHeaderMessage reads improbable's header message: "name: value"
// lines ended by "\r\n" (a bare "\n" is accepted, empty lines are skipped),
// calling fn for each with the name as sent and the value without the
// surrounding spaces. It refuses, without calling fn for what follows, a
// line without colon, a name that is not a token, a value with control
// characters, and more than [maxHeaderLines] lines. The caller bounds the
// message's size. Its one allocation, errors aside, is the string of b.
func parseHeaderMessage(b []byte, fn func(name, value string)) error {
	s := string(b) // the names and values share it
	lines := 0
	for s != "" {
		var line string
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			line, s = s, ""
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if lines++; lines > maxHeaderLines {
			return errors.New("more than " + strconv.Itoa(maxHeaderLines) + " headers")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return errors.New("a header line without a colon")
		}
		if name == "" {
			return errors.New("a header without a name")
		}
		for i := 0; i < len(name); i++ {
			if !tokenByte[name[i]] {
				return errors.New("header name " + strconv.Quote(name) + " is not a token")
			}
		}
		value = strings.Trim(value, " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				return errors.New("the value of " + strconv.Quote(name) + " holds a control character")
			}
		}
		fn(name, value)
	}
	return nil
}

// requestHeaders builds the backend request's headers from the header
// message b and the upgrade request r: the message's headers the procedure
// allows (exactly what a preflight would grant: the protocol's, the
// declared and the configured ones), the upgrade's Origin, and the
// upgrade's cookies and HTTP authorization only when the policy allows
// credentials. A header the policy does not allow is dropped and named in
// dropped. Cookie, Origin and Host in the message are always dropped: a
// script cannot send them over fetch either.
func requestHeaders(b []byte, r *http.Request, v *interceptor.UpgradeVerdict, credentials bool) (h http.Header, dropped []string, err error) {
	h = make(http.Header, 8)
	err = parseHeaderMessage(b, func(name, value string) {
		k := http.CanonicalHeaderKey(name)
		switch k {
		case "Cookie", "Origin", "Host":
			dropped = append(dropped, strings.ToLower(name))
			return
		}
		if !v.AllowsRequestHeader(name) {
			dropped = append(dropped, strings.ToLower(name))
			return
		}
		h[k] = append(h[k], value)
	})
	if err != nil {
		return nil, nil, err
	}
	if o := r.Header["Origin"]; len(o) > 0 {
		h["Origin"] = o
	}
	if credentials {
		if c := r.Header["Cookie"]; len(c) > 0 {
			h["Cookie"] = c
		}
		if a := r.Header["Authorization"]; len(a) > 0 && len(h["Authorization"]) == 0 {
			h["Authorization"] = a
		}
	}
	switch ct := strings.ToLower(h.Get("Content-Type")); {
	case ct == "":
		h["Content-Type"] = []string{"application/grpc-web+proto"}
	case !strings.HasPrefix(ct, "application/grpc-web") || strings.HasPrefix(ct, "application/grpc-web-text"):
		return nil, nil, errors.New("content-type " + strconv.Quote(ct) + ": WebSocket streams carry binary gRPC-Web (application/grpc-web, +proto or +json)")
	}
	return h, dropped, nil
}
