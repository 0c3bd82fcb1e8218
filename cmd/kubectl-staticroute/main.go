// Command kubectl-staticroute is the kubectl plugin (`kubectl staticroute`,
// once on PATH): fail a group over to a new gateway and watch every node
// switch, fail back, show a group's members and nodes, and say why a node
// steers an address or keeps it direct.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
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
  kubectl staticroute why ADDRESS [--node NODE]
      on NODE (every node if none): which group, member and gateway steer
      ADDRESS, and why that gateway; the route, table and ip rule that
      carry it; or what keeps it direct (VPC, pod, service, API server,
      connected, --never-route, special ranges)
  kubectl staticroute version

And kubectl's own flags: --kubeconfig, --context, --cluster, --user,
--as, --as-group, --request-timeout, --server, --token and the rest
(` + "`kubectl options`" + ` lists them).
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
	fs := pflag.NewFlagSet("kubectl staticroute "+cmd, pflag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	// kubectl's flags, parsed and applied as kubectl does (impersonation,
	// timeouts, the kubeconfig's rules); the plugin's resources are
	// cluster-scoped, so --namespace is accepted and unused.
	kube := genericclioptions.NewConfigFlags(true)
	kube.AddFlags(fs)
	gateway := fs.String("gateway", "", "failover: the new gateway")
	name := fs.String("name", "", "failover: the new member's name (default GROUP-GATEWAY)")
	dryRun := fs.String("dry-run", "none", "failover: server to have the API server and the webhook check it and store nothing")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for every selected node")
	node := fs.String("node", "", "why: the node (default: every node)")
	// Flags may come before or after the group (pflag intersperses).
	if err := fs.Parse(args[1:]); errors.Is(err, pflag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	positional := fs.Args()
	if *dryRun != "none" && *dryRun != "server" {
		return fmt.Errorf("--dry-run=%s: only server (or none) is supported", *dryRun)
	}
	cl, err := newClient(kube)
	if err != nil {
		return err
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
	case cmd == "why" && len(positional) == 1:
		return c.Why(ctx, positional[0], *node)
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("%q: not a command line the plugin takes", cmd+" "+fmt.Sprint(positional))
}

// newClient is a client of the cluster kubectl's flags name, with our
// kinds.
func newClient(kube *genericclioptions.ConfigFlags) (client.Client, error) {
	cfg, err := kube.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	return cl, nil
}
