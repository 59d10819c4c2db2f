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

// Watch reloads the config whenever its directory reports a change, until
// ctx is done. It watches the directory, not the file, so saves by rename,
// deleted-and-recreated files and Kubernetes' ..data symlink swaps are all
// seen; reloads of unchanged bytes are no-ops, so unrelated events in the
// directory cost one read. It keeps watching after failed reloads.
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
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			r.log.Warn("config watcher error; still watching", "error", err)
		case <-timer.C:
			r.Reload("file")
		}
	}
}
