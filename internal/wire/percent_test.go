package wire

import "testing"

func TestPercentEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "plain text", want: "plain text"},
		{name: "percent", in: "100%", want: "100%25"},
		{name: "utf-8", in: "ï", want: "%C3%AF"},
		{name: "control", in: "a\nb", want: "a%0Ab"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := PercentEncode(tt.in); got != tt.want {
				t.Errorf("PercentEncode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := PercentDecode(tt.want); got != tt.in {
				t.Errorf("PercentDecode(%q) = %q, want %q", tt.want, got, tt.in)
			}
		})
	}
}

func TestPercentDecodeMalformed(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"%zz": "%zz", "%4": "%4", "a%": "a%", "%c3%af": "ï", "%41": "A"} {
		if got := PercentDecode(in); got != want {
			t.Errorf("PercentDecode(%q) = %q, want %q", in, got, want)
		}
	}
}
