package validate

import (
	"strings"
	"testing"
	"time"

	"github.com/staticroute/staticroute/test/corpus"
)

func corpusConfig(t *testing.T) Config {
	t.Helper()
	flags, err := corpus.Flags("../..")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	cfg.VPC, err = ParsePrefixes("vpc-cidr", flags["vpc-cidr"])
	add(err)
	cfg.Pod, err = ParsePrefixes("pod-cidr", flags["pod-cidr"])
	add(err)
	cfg.Service, err = ParsePrefixes("service-cidr", flags["service-cidr"])
	add(err)
	cfg.APIServers, err = ParseAddrs("api-server-address", flags["api-server-address"])
	add(err)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return cfg
}

// judge validates a corpus case as the webhook would after its given files
// were applied, one second apart, a minute before it.
func judge(t *testing.T, cfg Config, valid map[string]corpus.Case, c corpus.Case) Result {
	t.Helper()
	x := NewIndex()
	var old *corpus.Case
	for i, g := range c.Given {
		gc, ok := valid[g]
		if !ok {
			t.Fatalf("given %s: no such file in valid/", g)
		}
		obj := gc.Object.DeepCopy()
		obj.CreationTimestamp.Time = t0.Add(time.Duration(i) * time.Second)
		x.Put(RouteOf(obj))
		if obj.Name == c.Object.Name {
			gc.Object = obj
			old = &gc
		}
	}
	obj := c.Object.DeepCopy()
	obj.CreationTimestamp.Time = t0.Add(time.Minute)
	if old != nil {
		obj.CreationTimestamp = old.Object.CreationTimestamp
		return StaticRoute(cfg, x, obj, old.Object)
	}
	return StaticRoute(cfg, x, obj, nil)
}

func TestCorpusValid(t *testing.T) {
	cfg := corpusConfig(t)
	cases, err := corpus.Load("../..", "valid")
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]corpus.Case{}
	for _, c := range cases {
		byFile[c.File] = c
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			res := judge(t, cfg, byFile, c)
			if len(res.Errors) > 0 {
				t.Fatalf("rejected: %v", res.Errors)
			}
			all := strings.Join(res.Warnings, "\n")
			for _, w := range c.Warns {
				if !strings.Contains(all, w) {
					t.Errorf("want warning %q; got %q", w, res.Warnings)
				}
			}
			if len(c.Warns) == 0 && len(res.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", res.Warnings)
			}
		})
	}
}

func TestCorpusInvalid(t *testing.T) {
	cfg := corpusConfig(t)
	valid, err := corpus.Load("../..", "valid")
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]corpus.Case{}
	for _, c := range valid {
		byFile[c.File] = c
	}
	cases, err := corpus.Load("../..", "invalid")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			if len(c.Wants) == 0 {
				t.Fatal("an invalid file must say which errors it wants")
			}
			res := judge(t, cfg, byFile, c)
			for _, w := range c.Wants {
				found := false
				for _, e := range res.Errors {
					found = found || w.Matches(e.Error())
				}
				if !found {
					t.Errorf("want %s; got %v", w, res.Errors)
				}
			}
		})
	}
}
