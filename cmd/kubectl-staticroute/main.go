// Command kubectl-staticroute is the kubectl plugin (`kubectl staticroute`,
// once on PATH): fail a group over to a new gateway and watch every node
// switch, fail back, and show a group's members and nodes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/internal/cli"
	"github.com/staticroute/staticroute/internal/version"
)

const usage = `kubectl staticroute: fail egress groups over between NAT gateways

  kubectl staticroute failover GROUP --gateway IP [--name NAME] [--dry-run=server] [--timeout 60s]
      create a new member of GROUP via IP (the active member's destinations
      and nodeSelector), then show each selected node as it switches;
      exits 1 naming the nodes that did not switch within --timeout
  kubectl staticroute failback GROUP [--timeout 60s]
      delete GROUP's newest member; its predecessor carries the group again
  kubectl staticroute status [GROUP]
      the members (which one is active) and what each node routes
  kubectl staticroute version

Flags for every command: --kubeconfig FILE, --context NAME.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Println(version.String("kubectl-staticroute"))
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default $KUBECONFIG, ~/.kube/config)")
	kubeContext := fs.String("context", "", "kubeconfig context")
	gateway := fs.String("gateway", "", "failover: the new gateway")
	name := fs.String("name", "", "failover: the new member's name (default GROUP-GATEWAY)")
	dryRun := fs.String("dry-run", "none", "failover: server to have the API server and the webhook check it and store nothing")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for every selected node")
	// Flags may come before or after the group.
	var positional []string
	rest := args[1:]
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			positional = append(positional, rest[0])
			rest = rest[1:]
		}
	}
	if *dryRun != "none" && *dryRun != "server" {
		return fmt.Errorf("--dry-run=%s: only server (or none) is supported", *dryRun)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: *kubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &cli.CLI{Client: cl, Out: os.Stdout}
	group := ""
	if len(positional) > 0 {
		group = positional[0]
	}
	switch {
	case cmd == "failover" && len(positional) == 1 && *gateway != "":
		return c.Failover(ctx, group, *gateway, *name, *dryRun == "server", *timeout)
	case cmd == "failback" && len(positional) == 1:
		return c.Failback(ctx, group, *timeout)
	case cmd == "status" && len(positional) <= 1:
		return c.Status(ctx, group)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("%q: not a command line the plugin takes", cmd+" "+fmt.Sprint(positional))
}
