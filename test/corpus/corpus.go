// Package corpus reads the admission corpora under test/testdata/admission:
// StaticRoute files whose header comments say what admission must answer.
// pkg/validate checks them offline and test/e2e through a real API server.
package corpus

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	v1 "github.com/staticroute/staticroute/api/v1"
)

// Want is one expected error: at Path, with a message containing one of
// Texts.
type Want struct {
	Path  string
	Texts []string
}

// Matches reports whether a message line names the path and one text.
func (w Want) Matches(line string) bool {
	if !strings.Contains(line, w.Path+":") {
		return false
	}
	for _, t := range w.Texts {
		if strings.Contains(line, t) {
			return true
		}
	}
	return false
}

func (w Want) String() string { return w.Path + ": " + strings.Join(w.Texts, " | ") }

// Case is one corpus file.
type Case struct {
	File   string // base name
	Raw    []byte
	Object *v1.StaticRoute
	Given  []string // base names of files in valid/ to apply first
	Wants  []Want
	Warns  []string
}

// Dir is the corpora's folder, relative to the repository root.
const Dir = "test/testdata/admission"

// Load reads every file of root/Dir/sub ("valid" or "invalid").
func Load(root, sub string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(root, Dir, sub, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Case
	for _, f := range files {
		c, err := load(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no files in %s", filepath.Join(root, Dir, sub))
	}
	return out, nil
}

func load(path string) (Case, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Case{}, err
	}
	c := Case{File: filepath.Base(path), Raw: raw}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "# ") {
			continue
		}
		key, val, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": ")
		if !ok {
			continue
		}
		switch key {
		case "given":
			c.Given = append(c.Given, val)
		case "warn":
			c.Warns = append(c.Warns, val)
		case "want":
			p, texts, ok := strings.Cut(val, ": ")
			if !ok {
				return Case{}, fmt.Errorf("want line %q is not PATH: TEXT", val)
			}
			c.Wants = append(c.Wants, Want{Path: p, Texts: strings.Split(texts, "|")})
		}
	}
	c.Object = &v1.StaticRoute{}
	if err := yaml.UnmarshalStrict(raw, c.Object); err != nil {
		return Case{}, err
	}
	return c, nil
}

// Flags reads the webhook flags the corpora are judged with.
func Flags(root string) (map[string]string, error) {
	raw, err := os.ReadFile(filepath.Join(root, Dir, "webhook-flags.txt"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, l := range strings.Fields(string(raw)) {
		k, v, ok := strings.Cut(strings.TrimPrefix(l, "--"), "=")
		if !ok {
			return nil, fmt.Errorf("webhook-flags.txt: %q is not --name=value", l)
		}
		out[k] = v
	}
	return out, nil
}
