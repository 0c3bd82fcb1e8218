package framework

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"net/url"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/test/netlab"
	"github.com/staticroute/staticroute/test/tb"
)

// ClusterIP is the kubernetes Service's address in the test clusters'
// Service range (StartControlPlane's --service-cluster-ip-range): what a
// pod's in-cluster client dials.
const ClusterIP = "198.18.255.1"

// StartClusterControlPlane is a control plane for real nodes: its serving
// certificate names the kubernetes Service's ClusterIP and advertise, as
// a cluster's does, so that a pod's in-cluster client (through
// kube-proxy) trusts it; it advertises advertise (the default/kubernetes
// EndpointSlice), where each node forwards to it; and it authorizes
// kubelets with the Node authorizer. Pod Security baseline is enforced
// wherever a namespace does not say otherwise.
//
// kube-apiserver runs in host's network namespace (a VPC host of the
// world), where routes to the nodes' pod ranges lead (StartNode adds
// them): it calls webhooks at their Services' endpoints
// (--enable-aggregator-routing), as one beside the nodes would. etcd
// and the test reach each other and it through forwarders on loopback.
func StartClusterControlPlane(t tb.T, advertise string, host *netlab.NS) *ControlPlane {
	t.Helper()
	dir := t.TempDir()
	b, err := certs.New(certs.Options{DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(ClusterIP), net.ParseIP(advertise)}})
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "apiserver.crt"), b.Cert, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "apiserver.key"), b.Key, 0o600))
	writeSASigner(t, dir)
	apiAddr, etcdAddr := freeAddr(t), freeAddr(t)
	_, apiPort, _ := net.SplitHostPort(apiAddr)
	wrapper := filepath.Join(dir, "kube-apiserver-in-netns")
	must(t, os.WriteFile(wrapper, []byte("#!/bin/sh\nexec nsenter --net=/var/run/netns/"+host.Name+" -- "+Bin(t, "kube-apiserver")+` "$@"`+"\n"), 0o755))
	// Pod Security baseline enforced on every namespace without a label
	// of its own, as hardened clusters do.
	admission := filepath.Join(dir, "admission.yaml")
	must(t, os.WriteFile(admission, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults: {enforce: baseline, enforce-version: latest}
    exemptions: {}
`), 0o600))
	netlab.Forward(t, host, etcdAddr, etcdAddr)
	netlab.ForwardInto(t, host, apiAddr, apiAddr)
	cp := startControlPlane(t, func(env *envtest.Environment) {
		api := env.ControlPlane.GetAPIServer()
		api.CertDir = dir
		api.SecureServing.CA = b.CA
		api.Path = wrapper
		api.SecureServing.ListenAddr.Address, api.SecureServing.ListenAddr.Port = "127.0.0.1", apiPort
		env.ControlPlane.Etcd = &envtest.Etcd{URL: &url.URL{Scheme: "http", Host: etcdAddr}}
	},
		Flag{"authorization-mode", "Node,RBAC"}, Flag{"advertise-address", advertise}, Flag{"enable-aggregator-routing", "true"},
		Flag{"admission-control-config-file", admission},
		// envtest turns the ServiceAccount admission plugin off (it has
		// no controller manager): pods get no token volume without it.
		Flag{"disable-admission-plugins", ""}, Flag{"enable-admission-plugins", "ServiceAccount,NodeRestriction"})
	cp.caFile = filepath.Join(dir, "ca.crt")
	must(t, os.WriteFile(cp.caFile, b.CA, 0o600))
	cp.Advertise = advertise
	cp.Host = host
	return cp
}

// StartClusterControllers runs what a cluster runs beside the API server
// for workloads: kube-controller-manager's workload controllers (and the
// root CA's publisher, which pods' ServiceAccount volumes need) and
// kube-scheduler.
func (c *ControlPlane) StartClusterControllers(t tb.T) {
	t.Helper()
	Start(t, Bin(t, "kube-controller-manager"), "--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--root-ca-file", c.caFile,
		"--controllers", "garbage-collector-controller,daemonset-controller,deployment-controller,replicaset-controller,job-controller,cronjob-controller,serviceaccount-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller,endpointslice-controller,disruption-controller,ttl-after-finished-controller")
	Start(t, Bin(t, "kube-scheduler"), "--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=2")
}

// writeSASigner writes the ServiceAccount token signer's key and
// certificate where envtest would have.
func writeSASigner(t tb.T, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e service accounts"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "sa-signer.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "sa-signer.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
}
