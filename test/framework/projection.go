package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ProjectFiles writes files into dir as the kubelet projects a Secret
// volume (its AtomicWriter): into a new hidden folder, then one rename of
// the ..data symlink to it, with each file a symlink through ..data. A
// reader sees the old set or the new one, never a mix, and a watcher of
// the files sees the old target go, as in a Pod. Where the kubelet runs
// (issue 23), it does this itself.
func ProjectFiles(dir string, files map[string][]byte) error {
	ts := filepath.Join(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.000000000"))
	if err := os.MkdirAll(ts, 0o755); err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(ts, name), b, 0o644); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join("..data", name) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return fmt.Errorf("projecting %s: %w", name, err)
		}
	}
	if old != "" {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
