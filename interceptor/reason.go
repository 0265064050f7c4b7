package interceptor

// Reason says why a request was allowed or refused. Its String form is a
// stable label for metrics and logs.
type Reason uint8

// The reasons, in the order the checks run.
const (
	// ReasonOK: every check passed.
	ReasonOK Reason = iota
	// ReasonOrigin: the Origin is missing, "null", malformed or not allowed.
	ReasonOrigin
	// ReasonProcedure: the path names no procedure of the table.
	ReasonProcedure
	// ReasonBarred: the procedure is kept away from browsers (browser_barred).
	ReasonBarred
	// ReasonMethod: the HTTP method is not allowed for the procedure.
	ReasonMethod
	// ReasonHeader: a requested header is not allowed, malformed, or the
	// header list exceeds the parser's bounds.
	ReasonHeader
)

var reasonNames = [...]string{
	ReasonOK:        "ok",
	ReasonOrigin:    "origin",
	ReasonProcedure: "procedure",
	ReasonBarred:    "barred",
	ReasonMethod:    "method",
	ReasonHeader:    "header",
}

// String returns "ok", "origin", "procedure", "barred", "method" or
// "header" (and "unknown" for values outside these).
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Verdict is what a [Policy] decided for one preflight or cross-origin actual
// request; see [WithObserver].
type Verdict struct {
	// Preflight is true for preflights, false for actual requests.
	Preflight bool
	// Allowed is true when the browser gets the CORS headers it needs.
	Allowed bool
	// Reason is the failed check, or ReasonOK.
	Reason Reason
	// Procedure is the procedure's path ("/greet.v1.GreetService/Greet"),
	// or "" when the path names no procedure of the table, so metrics
	// labels stay bounded whatever paths clients send.
	Procedure string
}
