package h2client

import (
	"strings"
	"testing"
	"time"
)

// TestNewRefusesBadConfig: New validates every field once.
func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no authority", cfg: Config{}, want: `Config.Authority ""`},
		{name: "no port", cfg: Config{Authority: "backend"}, want: `Config.Authority "backend"`},
		{name: "small stream window", cfg: Config{Authority: "b:1", StreamWindow: 100}, want: "Config.StreamWindow 100"},
		{name: "huge stream window", cfg: Config{Authority: "b:1", StreamWindow: 1 << 31}, want: "Config.StreamWindow"},
		{name: "small connection window", cfg: Config{Authority: "b:1", ConnWindow: 1000}, want: "Config.ConnWindow 1000"},
		{name: "negative ping", cfg: Config{Authority: "b:1", PingAfter: -time.Second}, want: "Config.PingAfter -1s"},
		{name: "tiny ping timeout", cfg: Config{Authority: "b:1", PingTimeout: time.Nanosecond}, want: "PingTimeout 1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	tr, err := New(Config{Authority: "b:1"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.streamWindow != DefaultStreamWindow || tr.connWindow != DefaultConnWindow || tr.pingAfter != DefaultPingAfter ||
		tr.pingTimeout != DefaultPingTimeout || tr.handOver != DefaultStreamWindow/4 {
		t.Errorf("the zero Config's defaults: %+v", tr)
	}
}
