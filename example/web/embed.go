// Package web holds the corsgate demo page, built from the TypeScript sources
// beside this file (./build.sh) and embedded so that `corsgate demo` needs no
// npm.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// FS is the built page rooted at dist: index.html, app.js and style.css.
var FS fs.FS = mustSub(dist, "dist")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, which "dist" is not.
		panic("web: " + err.Error())
	}
	return sub
}
