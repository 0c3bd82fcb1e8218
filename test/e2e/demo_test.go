package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/staticroute/staticroute/test/framework"
)

// TestDemo runs `make demo`'s program as a new user would, and checks the
// story's outcomes in what it prints: it fails the run itself when a node
// does not reach the destination via the expected gateway.
func TestDemo(t *testing.T) {
	framework.RequireRoot(t)
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./hack/demo", "-nodes", "3")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{
		"(the node's own address)",
		`spec.gateway: Invalid value: "203.0.113.50": is outside the VPC (198.51.100.0/24)`,
		"spec.gateway is immutable",
		"set spec.group: primary",
		"leaked via a node's own address: 0; lost: 0",
		"A's connections now leave by B",
		"B's own connections: 0 probes lost, 0 TCP connections broken",
		"steered by group primary, member both, over its 2 gateways",
		"all 3 selected nodes route secondary",
		"the last node fails over by itself",
		"NewerDown",
		"Tearing down",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo did not print %q:\n%s", want, out)
		}
	}
	// kubectl get sr -o wide, at the end: secondary carries its group on
	// all three nodes again.
	if !slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool {
		f := strings.Fields(l)
		return len(f) >= 5 && f[0] == "secondary" && f[1] == "primary" && f[2] == "198.51.100.12" && f[3] == "Active" && f[4] == "3/3"
	}) {
		t.Errorf("the demo's kubectl get sr -o wide did not show secondary Active on 3/3:\n%s", out)
	}
	if strings.Contains(string(out), "✗") {
		t.Errorf("a node or the pod reached the destination the wrong way:\n%s", out)
	}
}
