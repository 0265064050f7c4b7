package web_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/example/web"
)

// TestFS: the embedded page has its three files, and the page loads the
// other two.
func TestFS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want []string
	}{
		{name: "index.html", want: []string{`src="app.js"`, `href="style.css"`, `id="run-all"`, `id="results"`}},
		{name: "app.js", want: []string{"corsgateTest", "greet.v1.GreetService"}},
		{name: "style.css", want: []string{".badge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := fs.ReadFile(web.FS, tt.name)
			if err != nil {
				t.Fatalf("%s is not embedded (run example/web/build.sh): %v", tt.name, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s does not contain %q", tt.name, w)
				}
			}
		})
	}
}
