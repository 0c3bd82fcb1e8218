package chart

import (
	"fmt"
	"strings"
)

// params stands placeholders into an object where a value of the chart
// goes, and says what template text takes each placeholder's line. The
// object is then written as plain YAML, so that every other byte of the
// template is kustomize's.
type params struct {
	n    int
	line map[string]func(indent, key string) string
}

func newParams() *params { return &params{line: map[string]func(indent, key string) string{}} }

// token is a new placeholder, whose line becomes f(indent, key).
func (p *params) token(f func(indent, key string) string) string {
	p.n++
	t := fmt.Sprintf("chart__param__%d", p.n)
	p.line[t] = f
	return t
}

// scalar puts {{ expr }} in place of a value.
func (p *params) scalar(expr string) string {
	return p.token(func(indent, key string) string {
		return fmt.Sprintf("%s%s: {{ %s }}", indent, key, expr)
	})
}

// block is a key whose value is the chart value at path, written only
// when that value is not empty.
func (p *params) block(path string) string {
	return p.token(func(indent, key string) string {
		return fmt.Sprintf("{{- with %s }}\n%s%s:{{- toYaml . | nindent %d }}\n{{- end }}", path, indent, key, len(indent)+2)
	})
}

// listTail is a last item of a list of strings: the chart value at path,
// each item quoted.
func (p *params) listTail(path string) string {
	return p.token(func(indent, _ string) string {
		return fmt.Sprintf("{{- range %s }}\n%s- {{ . | quote }}\n{{- end }}", path, indent)
	})
}

// fill writes, in y (an object as YAML), each placeholder's line.
func (p *params) fill(y string) (string, error) {
	lines := strings.Split(y, "\n")
	for i, l := range lines {
		if !strings.Contains(l, "chart__param__") {
			continue
		}
		trimmed := strings.TrimLeft(l, " ")
		indent := l[:len(l)-len(trimmed)]
		var key, tok string
		switch {
		case strings.HasPrefix(trimmed, "- "):
			tok = strings.TrimPrefix(trimmed, "- ")
		default:
			var ok bool
			key, tok, ok = strings.Cut(trimmed, ": ")
			if !ok {
				return "", fmt.Errorf("a placeholder on a line that is no key or list item: %q", l)
			}
			if strings.HasPrefix(key, "chart__param__") { // the key itself stands for text
				key, tok = "", key
			}
		}
		f, ok := p.line[tok]
		if !ok {
			return "", fmt.Errorf("an unknown placeholder on %q", l)
		}
		lines[i] = f(indent, key)
	}
	return strings.Join(lines, "\n"), nil
}
