package interceptor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

func TestWrapPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "unknown service", path: "/nope.v1.NopeService/", want: `service "nope.v1.NopeService" is not in protoregistry.GlobalFiles`},
		{name: "not a service", path: "/greet.v1.GreetRequest/", want: "not a service"},
		{name: "procedure path", path: "/greet.v1.GreetService/Greet", want: "service path"},
		{name: "empty", path: "", want: "service path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, WithAllowedOrigins(appOrigin))
			defer func() {
				r := recover()
				err, ok := r.(error)
				if !ok || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
					t.Errorf("Wrap(%q) panic = %v, want an error containing %q and the path", tt.path, r, tt.want)
				}
			}()
			p.Wrap(tt.path, http.NotFoundHandler())
		})
	}
}

func TestWrapServiceAndFiles(t *testing.T) {
	t.Parallel()
	p := mustNew(t, WithAllowedOrigins(appOrigin))
	files := new(protoregistry.Files)
	if err := files.RegisterFile(greetv1.File_greet_v1_greet_proto); err != nil {
		t.Fatal(err)
	}
	viaService, err := p.WrapService(greetv1.File_greet_v1_greet_proto.Services().Get(0), http.NotFoundHandler())
	if err != nil {
		t.Fatalf("WrapService() error = %v", err)
	}
	viaFiles, err := p.WrapFiles(files, http.NotFoundHandler())
	if err != nil {
		t.Fatalf("WrapFiles() error = %v", err)
	}
	path, viaWrap := p.Wrap("/greet.v1.GreetService/", http.NotFoundHandler())
	if path != "/greet.v1.GreetService/" {
		t.Errorf("Wrap() path = %q", path)
	}
	for name, h := range map[string]http.Handler{"WrapService": viaService, "WrapFiles": viaFiles, "Wrap": viaWrap} {
		r := httptest.NewRequest(http.MethodOptions, pathGreet, nil)
		r.Header.Set(hOrigin, appOrigin)
		r.Header.Set(hACRM, "GET")
		r.Header.Set(hACRH, "authorization")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			t.Errorf("%s: preflight status = %d, want 204", name, w.Code)
		}
	}
	if _, err := p.WrapFiles(new(protoregistry.Files), http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "no service") {
		t.Errorf("WrapFiles(empty) error = %v, want one saying there is no service", err)
	}
	if _, err := p.WrapService(nil, http.NotFoundHandler()); err == nil {
		t.Errorf("WrapService(nil) error = nil")
	}
}
