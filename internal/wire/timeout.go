package wire

import (
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
)

// Timeout reads the client's deadline header for protocol p: Grpc-Timeout
// for gRPC and gRPC-Web, Connect-Timeout-Ms for Connect. ok is false
// without one (or an empty one); a malformed value is an INVALID_ARGUMENT
// status.
func Timeout(r *http.Request, p Protocol) (d time.Duration, ok bool, st *Status) {
	var name string
	switch p {
	case ProtocolGRPC, ProtocolGRPCWeb, ProtocolGRPCWebText:
		name = "Grpc-Timeout"
	case ProtocolConnect, ProtocolConnectGet, ProtocolConnectStream:
		name = "Connect-Timeout-Ms"
	default:
		return 0, false, nil
	}
	v, st := OneValue(r.Header, name)
	if st != nil || v == "" {
		return 0, false, st
	}
	if name == "Grpc-Timeout" {
		d, st = ParseGRPCTimeout(v)
	} else {
		d, st = ParseConnectTimeout(v)
	}
	if st != nil {
		return 0, false, st
	}
	return d, true, nil
}

// ParseConnectTimeout parses a Connect-Timeout-Ms value: at most 10 digits.
func ParseConnectTimeout(v string) (time.Duration, *Status) {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 || len(v) > 10 {
		return 0, NewStatus(connect.CodeInvalidArgument, "invalid connect-timeout-ms "+strconv.Quote(v))
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// ParseGRPCTimeout parses a Grpc-Timeout value: at most 8 digits and a unit
// (H, M, S, m, u, n). Hours that overflow a Duration give the largest one.
func ParseGRPCTimeout(v string) (time.Duration, *Status) {
	if len(v) < 2 || len(v) > 9 {
		return 0, badGRPCTimeout(v)
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, badGRPCTimeout(v)
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, badGRPCTimeout(v)
	}
	const maxHours = int64((1<<63 - 1) / int64(time.Hour))
	if unit == time.Hour && n > maxHours {
		return time.Duration(1<<63 - 1), nil
	}
	return time.Duration(n) * unit, nil
}

func badGRPCTimeout(v string) *Status {
	return NewStatus(connect.CodeInvalidArgument, "invalid grpc-timeout "+strconv.Quote(v))
}

// EncodeGRPCTimeout writes d as a Grpc-Timeout value with the finest unit
// that fits in 8 digits, rounded up so a deadline passed on is never earlier
// than d. d <= 0 gives "1n".
func EncodeGRPCTimeout(d time.Duration) string {
	if d <= 0 {
		return "1n"
	}
	const max8 = 100_000_000
	units := [...]struct {
		d time.Duration
		c byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}, {time.Hour, 'H'}}
	for _, u := range units {
		if v := d / u.d; v < max8 {
			if d%u.d != 0 {
				v++
			}
			return strconv.FormatInt(int64(v), 10) + string(u.c)
		}
	}
	return "99999999H"
}
