package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{name: "no build info", info: nil, ok: false, want: "devel"},
		{name: "local build", info: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, ok: true, want: "devel"},
		{name: "empty version", info: &debug.BuildInfo{Main: debug.Module{}}, ok: true, want: "devel"},
		{name: "go install at version", info: &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, ok: true, want: "v0.3.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fromBuildInfo(tt.info, tt.ok); got != tt.want {
				t.Errorf("fromBuildInfo() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVersionSet(t *testing.T) {
	t.Parallel()
	if Version == "" {
		t.Fatal("Version is empty after init")
	}
}
