package main

import (
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// fileWatcher watches the directories of the --config file and of the TLS
// files. Directories, not files: an editor or cert-manager may replace a
// file by renaming another over it, and Kubernetes ConfigMap and Secret
// volumes swap a "..data" symlink, which a watch on the file would miss.
// A nil *fileWatcher watches nothing.
type fileWatcher struct {
	w    *fsnotify.Watcher
	dirs map[string]map[string]bool // directory → names watched in it
}

func newFileWatcher() (*fileWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &fileWatcher{w: w, dirs: map[string]map[string]bool{}}, nil
}

// watch makes the watched files those of cfg: none without --watch.
func (fw *fileWatcher) watch(cfg *serveConfig) error {
	if fw == nil {
		return nil
	}
	want := map[string]map[string]bool{}
	var files []string
	if cfg.watch {
		files = []string{cfg.configPath, cfg.tlsCert, cfg.tlsKey, cfg.clientCA}
	}
	for _, p := range files {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		dir := filepath.Dir(abs)
		if want[dir] == nil {
			want[dir] = map[string]bool{}
		}
		want[dir][filepath.Base(abs)] = true
	}
	for dir := range fw.dirs {
		if want[dir] == nil {
			_ = fw.w.Remove(dir)
			delete(fw.dirs, dir)
		}
	}
	var firstErr error
	for dir, names := range want {
		if fw.dirs[dir] == nil {
			if err := fw.w.Add(dir); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
		}
		fw.dirs[dir] = names
	}
	return firstErr
}

// relevant reports a change of a watched file, or of a Kubernetes volume's
// "..data" link (or the timestamped directory behind it).
func (fw *fileWatcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Base(ev.Name)
	return fw.dirs[filepath.Dir(ev.Name)][name] || strings.HasPrefix(name, "..")
}

func (fw *fileWatcher) events() <-chan fsnotify.Event {
	if fw == nil {
		return nil
	}
	return fw.w.Events
}

func (fw *fileWatcher) errors() <-chan error {
	if fw == nil {
		return nil
	}
	return fw.w.Errors
}

func (fw *fileWatcher) close() {
	if fw != nil {
		_ = fw.w.Close()
	}
}
