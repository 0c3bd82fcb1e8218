// Command chart writes charts/staticroute's generated files from config/
// (make chart).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/staticroute/staticroute/internal/chart"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run() error {
	files, err := chart.Generate(".")
	if err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(chart.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
