package main

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/staticroute/staticroute/pkg/policy"
)

func parse(t *testing.T, args ...string) options {
	t.Helper()
	fs := flag.NewFlagSet("node-router", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o, _, err := parseFlags(fs, args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return o
}

// The defaults make the defaults of pkg/policy; flags change them.
func TestPolicyOptionsFromFlags(t *testing.T) {
	p, err := policyOptions(parse(t))
	if err != nil || p != policy.DefaultOptions() {
		t.Fatalf("defaults: %+v %v, want %+v", p, err, policy.DefaultOptions())
	}
	p, err = policyOptions(parse(t, "--tables=600,601", "--mark=0x400", "--rule-priority=30500"))
	if err != nil || p.Tables != [2]int{600, 601} || p.Mark != 0x400 || p.Priority != 30500 {
		t.Fatalf("set: %+v %v", p, err)
	}
}

// Every mistake is reported at once, each naming its flag; one that does
// not parse is reported once, not again as its default's conflicts.
func TestFlagMistakesAllAtOnce(t *testing.T) {
	_, err := policyOptions(parse(t, "--tables=x,601", "--mark=3", "--probe-rule-priority=99999"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--tables", "--mark: 0x3 is not a single bit", "--probe-rule-priority"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not name %q", err, want)
		}
	}
	_, err = routerConfig(parse(t, "--node-name=", "--node-ip=banana", "--never-route=10.0.0.0/33", "--flap-half-life=-1s"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"--node-name (or $NODE_NAME", "--node-ip (or $NODE_IP): \"banana\"", "never-route", "half-life"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not name %q", err, want)
		}
	}
	c, err := routerConfig(parse(t, "--node-name=node-1", "--node-ip=198.51.100.10", "--never-route=192.0.2.0/24", "--adopt-legacy-routes"))
	if err != nil || c.NodeName != "node-1" || c.NodeIP.String() != "198.51.100.10" || len(c.NeverRoute) != 1 || !c.AdoptLegacyRoutes || c.RulePriority != 30010 {
		t.Fatalf("a good command line: %+v %v", c, err)
	}
}
