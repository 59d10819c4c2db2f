package proxy

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the watcher waits after the last file event
// before reloading: editors save in several steps (write temp, rename,
// chmod), and Kubernetes swaps a symlink; one save must be one reload.
const DefaultDebounce = 100 * time.Millisecond

// Watch reloads the config whenever it may have changed, until ctx is done.
//
// It watches the config file's directory, not the file, so saves by rename,
// deleted-and-recreated files and Kubernetes' ..data symlink swaps are all
// seen. When the path is a symlink it also watches the directory of the
// file it resolves to, so in-place writes to the target are seen too; that
// second watch follows the link after every reload. Reloads of unchanged
// bytes are no-ops, so unrelated events cost one read. Errors are logged and
// watching goes on.
func (r *Runtime) Watch(ctx context.Context, debounce time.Duration) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(r.opts.ConfigPath)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch config directory %q: %w", dir, err)
	}
	targetDir := ""
	followTarget := func() {
		resolved, err := filepath.EvalSymlinks(r.opts.ConfigPath)
		if err != nil {
			return // missing for now; the directory watch sees it come back
		}
		d := filepath.Dir(resolved)
		if d == targetDir || d == dir {
			return
		}
		if targetDir != "" {
			_ = w.Remove(targetDir)
			targetDir = ""
		}
		if err := w.Add(d); err != nil {
			r.log.Warn("cannot watch the config's target directory", "dir", d, "error", err)
			return
		}
		targetDir = d
	}
	followTarget()
	r.log.Info("watching config for changes", "path", r.opts.ConfigPath)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			r.log.Trace("config directory event", "name", ev.Name, "op", ev.Op.String())
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("config watcher error; still watching", "error", err)
		case <-timer.C:
			r.Reload("file")
			followTarget()
		}
	}
}
