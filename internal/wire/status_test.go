package wire

import (
	"encoding/json"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

func TestStatusFromHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		h      http.Header
		want   Status
		wantOK bool
	}{
		{name: "none", h: http.Header{}},
		{name: "ok", h: http.Header{"Grpc-Status": {"0"}}, wantOK: true},
		{name: "error", h: http.Header{"Grpc-Status": {"5"}, "Grpc-Message": {"no %25"}, "Grpc-Status-Details-Bin": {"CAU"}},
			want: Status{Code: connect.CodeNotFound, Message: "no %", DetailsBin: "CAU"}, wantOK: true},
		{name: "invalid", h: http.Header{"Grpc-Status": {"x"}},
			want: Status{Code: connect.CodeInternal, Message: `backend sent an invalid grpc-status "x"`}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := StatusFromHeader(tt.h)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("StatusFromHeader = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestConnectJSONDetails: a detail set with SetDetails comes out of
// ConnectJSON as connect-go writes it (full name, unpadded base64); bad
// details are dropped, codes out of range are "unknown".
func TestConnectJSONDetails(t *testing.T) {
	t.Parallel()
	st := NewStatus(connect.CodeAborted, "retry")
	if err := st.SetDetails(&errdetails.ErrorInfo{Reason: "R"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Code, Message string
		Details       []struct{ Type, Value string }
	}
	if err := json.Unmarshal(st.ConnectJSON(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Code != "aborted" || got.Message != "retry" || len(got.Details) != 1 || got.Details[0].Type != "google.rpc.ErrorInfo" || got.Details[0].Value != "CgFS" {
		t.Errorf("ConnectJSON = %+v", got)
	}
	bad := &Status{Code: 99, Message: "m", DetailsBin: "!!"}
	if s := string(bad.ConnectJSON()); s != `{"code":"unknown","message":"m"}` {
		t.Errorf("ConnectJSON = %s", s)
	}
}
