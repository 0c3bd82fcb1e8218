// Command certs makes the webhook's CA and serving certificate and injects
// the CA into webhook configurations, where cert-manager is absent:
//
//	certs make   -dir DIR -dns NAME[,NAME] -ip ADDR[,ADDR]
//	certs inject -ca DIR/ca.crt < manifests.yaml > patched.yaml
//	certs rotate [-namespace NS] [-ca-secret NAME] [-secret NAME] [-service NAME] [-webhook NAME]
//	             [-validity D] [-ca-validity D] [-ip ADDR[,ADDR]] [-kubeconfig FILE]
//	certs version
//
// rotate runs in the cluster (config/without-cert-manager runs it as a Job
// at install and as a CronJob every hour): it makes the webhook's CA and
// serving certificate where there are none, renews each when a third of
// its life is left, and keeps the webhook configuration trusting every CA
// still in use.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/internal/version"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: certs make|inject|rotate|version [flags] (see -h of each)")
	}
	switch args[0] {
	case "version", "--version", "-version":
		fmt.Println(version.String("certs"))
		return nil
	case "make":
		fs := flag.NewFlagSet("make", flag.ContinueOnError)
		dir := fs.String("dir", "", "directory to write ca.crt, tls.crt and tls.key into")
		dns := fs.String("dns", "", "comma-separated DNS names for the serving certificate")
		ips := fs.String("ip", "", "comma-separated IP addresses for the serving certificate")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dir == "" {
			return fmt.Errorf("make: -dir is required")
		}
		opts := certs.Options{DNSNames: split(*dns)}
		for _, s := range split(*ips) {
			ip := net.ParseIP(s)
			if ip == nil {
				return fmt.Errorf("make: -ip: %q is not an IP address", s)
			}
			opts.IPs = append(opts.IPs, ip)
		}
		b, err := certs.New(opts)
		if err != nil {
			return err
		}
		return b.WriteDir(*dir)
	case "inject":
		fs := flag.NewFlagSet("inject", flag.ContinueOnError)
		ca := fs.String("ca", "", "PEM file of the CA to trust (ca.crt from certs make)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return fmt.Errorf("inject: -ca: %w", err)
		}
		out, err := certs.InjectCABundle(os.Stdin, pem)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	case "rotate", "bootstrap":
		// bootstrap: the name of rotate's first pass in releases before
		// v0.6, kept so that their Jobs still run.
		return rotate(args[0], args[1:])
	default:
		return fmt.Errorf("unknown command %q: use make, inject, rotate or version", args[0])
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
