package servicepattern

import "testing"

func TestPatterns(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p     string
		valid bool
	}{
		{p: "greet.v1.GreetService", valid: true},
		{p: "greet.v1.*", valid: true},
		{p: "Service", valid: true},
		{p: "*", valid: false},
		{p: "greet.*.v1", valid: false},
		{p: "greet..v1", valid: false},
		{p: "", valid: false},
		{p: "greet.v1.", valid: false},
	} {
		if got := Valid(tt.p); got != tt.valid {
			t.Errorf("Valid(%q) = %v, want %v", tt.p, got, tt.valid)
		}
	}
	for _, tt := range []struct {
		p, service string
		want       bool
	}{
		{p: "greet.v1.*", service: "greet.v1.GreetService", want: true},
		{p: "greet.v1.*", service: "greet.v10.GreetService"},
		{p: "greet.v1.*", service: "greet.v1"},
		{p: "greet.v1.GreetService", service: "greet.v1.GreetService", want: true},
		{p: "greet.v1.GreetService", service: "greet.v1.GreetServiceX"},
	} {
		if got := Match(tt.p, tt.service); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.p, tt.service, got, tt.want)
		}
	}
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{a: "greet.*", b: "greet.v1.*", want: true},
		{a: "greet.v1.*", b: "greet.v1.S", want: true},
		{a: "greet.v1.S", b: "greet.v1.S", want: true},
		{a: "greet.v1.S", b: "greet.v1.T"},
		{a: "greet.v1.*", b: "greet.v10.*"},
		{a: "greet.v1.*", b: "greet.v10.S"},
	} {
		if got, back := Overlap(tt.a, tt.b), Overlap(tt.b, tt.a); got != tt.want || back != tt.want {
			t.Errorf("Overlap(%q, %q) = %v, %v; want %v", tt.a, tt.b, got, back, tt.want)
		}
	}
}
