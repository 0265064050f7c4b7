package wire

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, ctype string
		want          Class
		wantCT        string // ContentType()[0]
	}{
		{method: "GET", want: Class{Protocol: ProtocolConnectGet}, wantCT: "application/json"},
		{method: "PUT", ctype: "application/grpc", want: Class{}, wantCT: "application/json"},
		{method: "POST", ctype: "application/grpc-web-text", want: Class{Protocol: ProtocolGRPCWebText, Codec: "proto", Bare: true}, wantCT: "application/grpc-web-text"},
		{method: "POST", ctype: "application/grpc-web-text+proto", want: Class{Protocol: ProtocolGRPCWebText, Codec: "proto"}, wantCT: "application/grpc-web-text+proto"},
		{method: "POST", ctype: "application/grpc-web-text+json", want: Class{Protocol: ProtocolGRPCWebText, Codec: "json"}, wantCT: "application/grpc-web-text+json"},
		{method: "POST", ctype: "application/grpc-web", want: Class{Protocol: ProtocolGRPCWeb, Codec: "proto", Bare: true}, wantCT: "application/grpc-web"},
		{method: "POST", ctype: "application/grpc-web+json", want: Class{Protocol: ProtocolGRPCWeb, Codec: "json"}, wantCT: "application/grpc-web+json"},
		{method: "POST", ctype: "Application/GRPC-Web+Proto ; x=y", want: Class{Protocol: ProtocolGRPCWeb, Codec: "proto"}, wantCT: "application/grpc-web+proto"},
		{method: "POST", ctype: "application/grpc", want: Class{Protocol: ProtocolGRPC, Codec: "proto", Bare: true}, wantCT: "application/grpc"},
		{method: "POST", ctype: "application/grpc+thrift", want: Class{Protocol: ProtocolGRPC, Codec: "thrift"}, wantCT: "application/grpc+thrift"},
		{method: "POST", ctype: "application/grpc-webx", want: Class{Protocol: ProtocolConnect, Codec: "grpc-webx"}, wantCT: "application/json"},
		{method: "POST", ctype: "application/connect+proto", want: Class{Protocol: ProtocolConnectStream, Codec: "proto"}, wantCT: "application/connect+proto"},
		{method: "POST", ctype: "application/connect+json", want: Class{Protocol: ProtocolConnectStream, Codec: "json"}, wantCT: "application/connect+json"},
		{method: "POST", ctype: "application/proto", want: Class{Protocol: ProtocolConnect, Codec: "proto"}, wantCT: "application/proto"},
		{method: "POST", ctype: "application/json; charset=utf-8", want: Class{Protocol: ProtocolConnect, Codec: "json"}, wantCT: "application/json"},
		{method: "POST", ctype: "text/plain", want: Class{}, wantCT: "application/json"},
		{method: "POST", want: Class{}, wantCT: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.ctype, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "/s/M", nil)
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got := Classify(r)
			if got != tt.want {
				t.Errorf("Classify = %+v, want %+v", got, tt.want)
			}
			if ct := got.ContentType(); !slices.Equal(ct, []string{tt.wantCT}) {
				t.Errorf("ContentType = %q, want %q", ct, tt.wantCT)
			}
		})
	}
}

func TestClassifyAllocs(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/s/M", nil)
	r.Header.Set("Content-Type", "application/grpc-web-text+proto")
	if n := testing.AllocsPerRun(100, func() { _ = Classify(r).ContentType() }); n != 0 {
		t.Errorf("Classify and ContentType allocate %v times, want 0", n)
	}
}

func TestProtocolString(t *testing.T) {
	t.Parallel()
	if got := ProtocolGRPCWebText.String(); got != "grpc_web_text" {
		t.Errorf("String = %q", got)
	}
	if got := Protocol(200).String(); got != "unknown" {
		t.Errorf("String = %q", got)
	}
}
