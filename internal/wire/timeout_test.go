package wire

import (
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
)

func TestTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		protocol Protocol
		header   string
		value    string
		want     time.Duration
		wantOK   bool
		wantErr  bool
	}{
		{name: "grpc seconds", protocol: ProtocolGRPC, header: "Grpc-Timeout", value: "3S", want: 3 * time.Second, wantOK: true},
		{name: "grpc-web millis", protocol: ProtocolGRPCWeb, header: "Grpc-Timeout", value: "250m", want: 250 * time.Millisecond, wantOK: true},
		{name: "grpc-web-text hours overflow", protocol: ProtocolGRPCWebText, header: "Grpc-Timeout", value: "99999999H", want: 1<<63 - 1, wantOK: true},
		{name: "grpc bad unit", protocol: ProtocolGRPC, header: "Grpc-Timeout", value: "3s", wantErr: true},
		{name: "grpc nine digits", protocol: ProtocolGRPC, header: "Grpc-Timeout", value: "123456789S", wantErr: true},
		{name: "grpc ignores connect header", protocol: ProtocolGRPC, header: "Connect-Timeout-Ms", value: "5"},
		{name: "connect", protocol: ProtocolConnect, header: "Connect-Timeout-Ms", value: "1500", want: 1500 * time.Millisecond, wantOK: true},
		{name: "connect get", protocol: ProtocolConnectGet, header: "Connect-Timeout-Ms", value: "0", wantOK: true},
		{name: "connect stream eleven digits", protocol: ProtocolConnectStream, header: "Connect-Timeout-Ms", value: "12345678901", wantErr: true},
		{name: "connect negative", protocol: ProtocolConnect, header: "Connect-Timeout-Ms", value: "-1", wantErr: true},
		{name: "connect empty", protocol: ProtocolConnect, header: "Connect-Timeout-Ms", value: ""},
		{name: "unknown", protocol: ProtocolUnknown, header: "Grpc-Timeout", value: "1S"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/s/M", nil)
			r.Header[tt.header] = []string{tt.value}
			d, ok, st := Timeout(r, tt.protocol)
			if (st != nil) != tt.wantErr {
				t.Fatalf("status = %v, want error %v", st, tt.wantErr)
			}
			if st != nil && st.Code != connect.CodeInvalidArgument {
				t.Errorf("code %v, want invalid_argument", st.Code)
			}
			if d != tt.want || ok != tt.wantOK {
				t.Errorf("Timeout = %v, %v; want %v, %v", d, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestEncodeGRPCTimeout(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                        "1n",
		time.Second:              "1000000u",
		1500 * time.Millisecond:  "1500000u",
		200 * time.Hour:          "720000S",
		time.Duration(1<<63 - 1): "2562048H",
	} {
		if got := EncodeGRPCTimeout(d); got != want {
			t.Errorf("EncodeGRPCTimeout(%v) = %q, want %q", d, got, want)
		}
	}
}
