package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/staticroute/staticroute/certs"
)

func rotate(name string, args []string) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var c certs.Cluster
	fs.StringVar(&c.Namespace, "namespace", "staticroute-system", "namespace of the webhook's Service and both Secrets")
	fs.StringVar(&c.CASecret, "ca-secret", "staticroute-webhook-ca", "the Secret that holds the CA (its key is in no Pod's volume)")
	fs.StringVar(&c.Secret, "secret", "staticroute-webhook-serving", "the Secret that holds the serving certificate (the webhook mounts it)")
	fs.StringVar(&c.Service, "service", "staticroute-webhook", "the webhook's Service, which the certificate names")
	fs.StringVar(&c.Webhook, "webhook", "staticroute-validating", "the ValidatingWebhookConfiguration to trust the CAs")
	p := certs.Policy{}
	fs.DurationVar(&p.Validity, "validity", certs.DefaultValidity, "how long a serving certificate is valid; renewed when a third is left")
	fs.DurationVar(&p.CAValidity, "ca-validity", certs.DefaultCAValidity, "how long a CA is valid; renewed when a third is left, the old one trusted until it expires")
	ips := fs.String("ip", "", "comma-separated IP addresses the serving certificate names too (a webhook called by URL)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig to use outside the cluster (default: the Pod's ServiceAccount)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p.DNSNames = c.ServiceNames()
	for _, s := range split(*ips) {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("%s: -ip: %q is not an IP address", name, s)
		}
		p.IPs = append(p.IPs, ip)
	}
	var cfg *rest.Config
	var err error
	if *kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		err = fmt.Errorf("%s runs in the cluster, as a Job, or with -kubeconfig: %w", name, err)
	}
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	did, err := certs.Rotate(context.Background(), cs, c, p, time.Now())
	if err != nil {
		return err
	}
	fmt.Println(did)
	return nil
}
