// Command demo plays the old k8s-staticroute-operator's failover tutorial
// end to end on this machine, on real parts: etcd and kube-apiserver, the
// webhook and one node-router per node, nodes and NAT gateways as network
// namespaces. Run it as root: `make demo` (HOLD=1 keeps it up).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/staticroute/staticroute/test/framework"
	"github.com/staticroute/staticroute/test/netlab"
)

type demo struct {
	r       *runner
	cp      *framework.ControlPlane
	w       *netlab.World
	dir     string
	names   []string
	started time.Time
}

func main() {
	nodes := flag.Int("nodes", 3, "how many nodes")
	hold := flag.Bool("hold", os.Getenv("HOLD") == "1", "keep everything up at the end until Ctrl-C, and say how to use kubectl against it")
	verbose := flag.Bool("v", false, "show the harness's own log lines")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: run as root (it makes network namespaces): sudo make demo")
		os.Exit(2)
	}
	r := &runner{verbose: *verbose}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("\ninterrupted: tearing everything down")
		r.teardown()
		os.Exit(130)
	}()
	code := 0
	func() {
		defer func() {
			if p := recover(); p != nil {
				f, ok := p.(fatal)
				if !ok {
					r.teardown()
					panic(p)
				}
				fmt.Fprintf(os.Stderr, "\ndemo failed: %s\n", f.msg)
				code = 1
			}
		}()
		d := &demo{r: r, started: time.Now()}
		d.run(*nodes, *hold, sig)
		if r.Failed() {
			code = 1
		}
	}()
	fmt.Println("\nTearing down: processes stopped, namespaces deleted.")
	r.teardown()
	os.Exit(code)
}

func (d *demo) step(n int, title string) {
	fmt.Printf("\n[%d] %s   (%.1fs)\n", n, title, time.Since(d.started).Seconds())
}

func say(format string, args ...any) { fmt.Printf("    "+format+"\n", args...) }

// kubectl shows a command the way the tutorial does, runs it, and prints
// its output indented.
func (d *demo) kubectl(stdin []byte, args ...string) framework.KubectlResult {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.HasPrefix(a, d.dir+"/") {
			shown[i] = filepath.Base(a)
		}
	}
	fmt.Printf("    $ kubectl %s\n", strings.Join(shown, " "))
	res := d.cp.Kubectl(context.Background(), stdin, append([]string{}, args...)...)
	for _, l := range strings.Split(strings.TrimRight(res.Stdout+res.Stderr, "\n"), "\n") {
		if l != "" {
			fmt.Printf("      %s\n", l)
		}
	}
	return res
}

// plugin shows and runs `kubectl staticroute` (cmd/kubectl-staticroute).
func (d *demo) plugin(args ...string) {
	fmt.Printf("    $ kubectl staticroute %s\n", strings.Join(args, " "))
	out, err := exec.Command(framework.Bin(d.r, "kubectl-staticroute"), append(args, "--kubeconfig", d.cp.Kubeconfig)...).CombinedOutput()
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			fmt.Printf("      %s\n", l)
		}
	}
	if err != nil {
		d.r.Errorf("kubectl staticroute %s: %v", strings.Join(args, " "), err)
	}
}

func (d *demo) file(name, body string) string {
	p := filepath.Join(d.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		d.r.Fatal(err)
	}
	return p
}

func (d *demo) run(n int, hold bool, sig chan os.Signal) {
	r := d.r
	fmt.Println("staticroute: the failover tutorial of k8s-staticroute-operator, on real parts, on this machine.")
	fmt.Println("Addresses come from the documentation ranges; each stands for one in the tutorial:")
	say("%-15s the destination 34.160.111.145 (ifconfig.me): it answers with the source address it sees", netlab.EchoAddr)
	say("%-15s the primary NAT gateway 10.116.0.4 (public address %s)", netlab.GwAVPC, netlab.GwAPublic)
	say("%-15s the secondary NAT gateway 10.116.0.12 (public address %s)", netlab.GwBVPC, netlab.GwBPublic)
	say("%-15s the VPC 10.116.0.0/20", "198.51.100.0/24")
	flags := []string{"--vpc-cidr=198.51.100.0/24", "--pod-cidr=198.18.64.0/18", "--service-cidr=198.18.128.0/18"}

	d.step(1, "Control plane: etcd + kube-apiserver, the CRDs and webhook configuration from config/, the webhook")
	d.cp = framework.StartControlPlane(r)
	d.dir = r.TempDir()
	certDir, ca := framework.NewWebhookCerts(r)
	d.cp.Install(r, ca)
	framework.StartWebhook(r, d.cp, certDir, flags...)
	say("API server %s; webhook on %s with a certificate from certs/ (cert-manager's job in a cluster)", d.cp.Config.Host, framework.WebhookAddr)

	d.step(2, fmt.Sprintf("%d nodes (public + VPC interface, strict rp_filter), a pod behind node-1, two NAT gateways, the internet", n))
	d.w = netlab.NewWorldN(r, n)
	d.names = framework.StartRouters(r, d.cp, d.w, flags...).Names
	for i, name := range d.names {
		say("%s: VPC %s, public %s, node-router running as nobody with CAP_NET_ADMIN and CAP_NET_RAW", name, d.w.NodeVPC(i), d.w.NodePublic(i))
	}
	d.show("Before any StaticRoute, each node reaches the destination with its own public address:", "")

	d.step(3, "Apply primary.yaml")
	primary := d.route("primary.yaml", "primary", "", netlab.GwAVPC, netlab.EchoAddr)
	d.kubectl(nil, "apply", "-f", primary)
	d.waitAll(netlab.GwAPublic)
	d.show("Every node, and the pod, now reaches the destination as gateway A:", netlab.GwAPublic)

	d.step(4, "Mistakes are refused at kubectl apply time, with the field and the reason")
	bad := d.file("bad.yaml", `apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata:
  name: bad
spec:
  destinations: ["0.0.0.0", "198.51.100.7/24"]
  gateway: "203.0.113.50"
`)
	d.kubectl(nil, "apply", "-f", bad)
	say("A gateway outside the VPC (the webhook knows the VPC; the CRD's own rules do not):")
	far := d.route("far-gateway.yaml", "far", "", "203.0.113.50", "192.0.2.99")
	d.kubectl(nil, "apply", "-f", far)
	say("Editing the gateway in place (what broke nodes with the old operator):")
	edit := d.route("primary-edited.yaml", "primary", "", netlab.GwBVPC, netlab.EchoAddr)
	d.kubectl(nil, "apply", "-f", edit)
	say("The old tutorial's secondary.yaml while primary exists (two groups for one destination):")
	oldSecondary := d.route("old-secondary.yaml", "secondary", "", netlab.GwBVPC, netlab.EchoAddr)
	d.kubectl(nil, "apply", "-f", oldSecondary)

	d.step(5, "Failover: apply secondary.yaml (spec.group: primary) while every node and the pod probe 1,000 times a second")
	secondary := d.route("secondary.yaml", "secondary", "primary", netlab.GwBVPC, netlab.EchoAddr)
	probers := d.w.StartProbers(r, time.Millisecond)
	applied := time.Now()
	d.kubectl(nil, "apply", "-f", secondary)
	last := d.switched(probers, netlab.GwBPublic, applied, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	sent, leaked, lost := probers.Result()
	say("apply → last node switched (its probe's first answer via gateway B): %s", last.Round(time.Millisecond))
	say("probes sent %d; leaked via a node's own address: %d; lost: %d", sent, leaked, lost)
	if leaked != 0 {
		r.Errorf("%d probes leaked", leaked)
	}
	d.show("Every node, and the pod, now reaches the destination as gateway B:", netlab.GwBPublic)

	d.step(6, "Failback: delete the newer member; its predecessor carries the group again, atomically")
	d.kubectl(nil, "delete", "-f", secondary)
	d.waitAll(netlab.GwAPublic)
	d.show("Back on gateway A:", netlab.GwAPublic)
	fmt.Println("    The same with the kubectl plugin, which waits for every node's report:")
	d.plugin("failover", "primary", "--gateway", netlab.GwBVPC, "--name", "secondary")
	d.waitAll(netlab.GwBPublic)

	d.step(7, "Gateways that fail over by themselves: both members get a health check; gateway B dies")
	primaryChecked := d.checked(primary, netlab.EchoAddr)
	secondaryFile := d.file("secondary-checked.yaml", fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata:
  name: secondary
spec:
  group: primary
  destinations:
    - %q
  gateway: %q
  healthCheck:
    target: %q   # probed through this member's gateway: proves its NAT too
`, netlab.EchoAddr, netlab.GwBVPC, netlab.EchoAddr))
	d.kubectl(nil, "apply", "-f", primaryChecked)
	d.kubectl(nil, "apply", "--server-side", "-f", secondaryFile) // the plugin created it
	say("Every node now probes %s through each gateway, every 200 ms; 3 lost in a row is down.", netlab.EchoAddr)
	time.Sleep(time.Second)
	probers = d.w.StartProbers(r, time.Millisecond)
	say("$ ip link set vpc down   (on gateway B: its host is gone)")
	failed := time.Now()
	d.w.GwB.IP(r, "link", "set", "vpc", "down")
	last = d.switched(probers, netlab.GwAPublic, failed, 10*time.Second)
	say("gateway B dies → the last node fails over by itself (no kubectl, no API server involved): %s", last.Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // the node states and the summary catch up
	d.plugin("status", "primary")
	say("$ ip link set vpc up   (gateway B is back)")
	d.w.GwB.IP(r, "link", "set", "vpc", "up")
	d.waitAll(netlab.GwBPublic)
	sent, leaked, lost = probers.Result()
	say("every node failed back after 3 answered probes; probes sent %d; leaked via a node's own address: %d; lost (while B was dying, undetected): %d", sent, leaked, lost)
	if leaked != 0 {
		r.Errorf("%d probes leaked", leaked)
	}
	d.show("Every node, and the pod, reaches the destination as gateway B again:", netlab.GwBPublic)

	d.twoGateways()

	d.step(9, "What the cluster says")
	time.Sleep(1500 * time.Millisecond) // the summarizer writes at most once a second per route
	d.kubectl(nil, "get", "sr", "-o", "wide")
	d.kubectl(nil, "get", "staticroutenodestates")
	d.kubectl(nil, "get", "staticroutenodestate", d.names[0], "-o", "jsonpath={range .status.groups[*]}{.group}: {.state} via {.gateway} (member {.activeMember}){\"\\n\"}{end}")
	d.plugin("status", "primary")

	if hold {
		fmt.Printf("\nHolding. In another shell, as root:\n    KUBECONFIG=%s %s get sr -o wide\n", d.cp.Kubeconfig, framework.Bin(r, "kubectl"))
		fmt.Printf("    ip netns exec %s ip rule; ip netns exec %s ip route show table all | grep 'proto 146'\n", d.w.Node.Name, d.w.Node.Name)
		fmt.Println("Press Ctrl-C to tear everything down.")
		<-sig
	}
}

// twoGateways is step 8: a member over gateways A and B at once; A dies,
// and only its connections move.
func (d *demo) twoGateways() {
	r := d.r
	d.step(8, "Two gateways at once (spec.gateways): connections spread over A and B; gateway A dies, only its connections move")
	both := d.file("both.yaml", fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata:
  name: both
spec:
  group: primary
  destinations:
    - %q
  gateways: [%q, %q]   # each new connection takes one that is up, and keeps it
  healthCheck:
    target: %q
`, netlab.EchoAddr, netlab.GwAVPC, netlab.GwBVPC, netlab.EchoAddr))
	d.kubectl(nil, "apply", "-f", both)
	time.Sleep(1500 * time.Millisecond) // every node proves both gateways
	netlab.StartTCPEcho(r, d.w.Inet, netlab.TCPEchoPort)
	from := append(append([]*netlab.NS{}, d.w.Nodes...), d.w.Pod)
	flows := netlab.StartFlows(r, 5, from...)
	time.Sleep(time.Second)
	first := flows.Sources()
	by, odd := netlab.BySource(first)
	say("%d connections (UDP and TCP, from every node and the pod): %d via A, %d via B; %d changed address", len(first), by[netlab.GwAPublic], by[netlab.GwBPublic], len(odd))
	say("$ ip link set vpc down   (on gateway A)")
	failed := time.Now()
	d.w.GwA.IP(r, "link", "set", "vpc", "down")
	var slowest time.Duration
	err := framework.Eventually(context.Background(), 10*time.Second, func() error {
		for i, p := range flows.UDP {
			if first[i][0].String() != netlab.GwAPublic {
				continue
			}
			at, ok := p.FirstAfter(netlab.GwBPublic, failed)
			if !ok {
				return fmt.Errorf("UDP flow %d has not moved", i)
			}
			slowest = max(slowest, at.Sub(failed))
		}
		return nil
	})
	if err != nil {
		r.Fatal(err)
	}
	if slowest == 0 {
		r.Fatal("no UDP connection was on gateway A: nothing to see move")
	}
	time.Sleep(500 * time.Millisecond)
	lost, broken := 0, 0
	for i := range first {
		if first[i][0].String() != netlab.GwBPublic {
			continue
		}
		if i < len(flows.UDP) {
			lost += flows.UDP[i].LostBetween(failed.Add(-50*time.Millisecond), time.Now().Add(-200*time.Millisecond))
		} else if _, _, err := flows.TCP[i-len(flows.UDP)].State(); err != nil {
			broken++
		}
	}
	say("A's connections now leave by B, the last %s after A died; B's own connections: %d probes lost, %d TCP connections broken", slowest.Round(time.Millisecond), lost, broken)
	if lost+broken > 0 {
		r.Errorf("B's connections noticed A's death: %d lost, %d broken", lost, broken)
	}
	say("$ ip link set vpc up   (gateway A is back: once its probes prove it, and flap damping lets it, new connections take it again; those that moved stay on B)")
	d.w.GwA.IP(r, "link", "set", "vpc", "up")
	time.Sleep(1500 * time.Millisecond)
	d.plugin("why", netlab.EchoAddr, "--node", d.names[0])
	say("Back to one gateway at a time: delete both.yaml; secondary carries the group again")
	d.kubectl(nil, "delete", "-f", both)
	d.waitAll(netlab.GwBPublic)
}

// switched waits until every prober has had an answer via since, and
// returns when the last one first did.
func (d *demo) switched(ps *netlab.Probers, via string, since time.Time, within time.Duration) time.Duration {
	last, _, err := ps.Switched(nil, via, since, within)
	if err != nil {
		d.r.Fatal(err)
	}
	return last
}

// checked writes file's route again with a health check probing target.
func (d *demo) checked(file, target string) string {
	body, err := os.ReadFile(file)
	if err != nil {
		d.r.Fatal(err)
	}
	name := strings.TrimSuffix(filepath.Base(file), ".yaml") + "-checked.yaml"
	return d.file(name, string(body)+fmt.Sprintf("  healthCheck:\n    target: %q\n", target))
}

// route writes a StaticRoute file the way the tutorial's are written.
func (d *demo) route(file, name, group, gateway, destination string) string {
	g := ""
	if group != "" {
		g = "\n  group: " + group
	}
	return d.file(file, fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata:
  name: %s
spec:%s
  destinations:
    - %q
  gateway: %q
`, name, g, destination, gateway))
}

// show prints, for each node and the pod, the source the echo saw.
func (d *demo) show(title, want string) {
	say("%s", title)
	for i, ns := range d.w.Nodes {
		got := netlab.Answers(d.r, ns)
		say("  %-7s $ curl ifconfig.me/ip   →  %s%s", d.names[i], got, mark(got, want, d.w.NodePublic(i)))
	}
	got := netlab.Answers(d.r, d.w.Pod)
	say("  %-7s $ curl ifconfig.me/ip   →  %s%s", "pod", got, mark(got, want, netlab.NodePublic))
}

func mark(got, want, own string) string {
	switch {
	case want == "" && got == own:
		return "   (the node's own address)"
	case got == want:
		return "   ✓"
	case got == own:
		return "   ✗ LEAK: the node's own address"
	}
	return "   ✗"
}

// waitAll waits until every node and the pod reach the echo as want.
func (d *demo) waitAll(want string) {
	start := time.Now()
	all := append(append([]*netlab.NS{}, d.w.Nodes...), d.w.Pod)
	err := framework.Eventually(context.Background(), 30*time.Second, func() error {
		for _, ns := range all {
			if got := netlab.Answers(d.r, ns); got != want {
				return fmt.Errorf("%s reaches the destination as %s", ns.Name, got)
			}
		}
		return nil
	})
	if err != nil {
		d.r.Fatal(err)
	}
	d.r.Logf("all on %s after %s", want, time.Since(start))
}
