package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/test/netlab"
	"github.com/staticroute/staticroute/test/tb"
)

// ControlPlane is a real etcd and kube-apiserver on loopback, and kubectl
// to talk to them as an administrator.
type ControlPlane struct {
	env        *envtest.Environment
	Config     *rest.Config
	Kubeconfig string
	Dir        string
	kubectl    string
	clientset  *kubernetes.Clientset // Clientset's, made once
	// Advertise is the address the API server advertises (a cluster
	// control plane's): nodes forward it to the API server.
	Advertise string
	// Host is the namespace kube-apiserver runs in (a cluster control
	// plane's); nil: the test's own.
	Host   *netlab.NS
	caFile string // the serving CA's, for the root CA's publisher
}

// Flag is one command-line flag of kube-apiserver, without its dashes.
type Flag struct{ Name, Value string }

// StartControlPlane starts etcd and kube-apiserver from ./bin, the latter
// with the given flags too, and stops them at cleanup.
func StartControlPlane(t tb.T, apiServerFlags ...Flag) *ControlPlane {
	t.Helper()
	return startControlPlane(t, nil, apiServerFlags...)
}

// startControlPlane is StartControlPlane, with prepare (if not nil) given
// the environment before it starts.
func startControlPlane(t tb.T, prepare func(*envtest.Environment), apiServerFlags ...Flag) *ControlPlane {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		Bin(t, b)
	}
	// envtest logs through controller-runtime's logger, which otherwise
	// prints a stack trace into benchmark output for never being set.
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{BinaryAssetsDirectory: filepath.Join(root, "bin")}
	// The cluster's own ranges come from the test ranges too.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "198.18.255.0/24")
	for _, f := range apiServerFlags {
		env.ControlPlane.GetAPIServer().Configure().Set(f.Name, f.Value)
	}
	if prepare != nil {
		prepare(env)
	}
	// APISERVER_LOG=<file>: the API server's log at -v=1 there (it says
	// why it closes a watch, for one).
	if path := os.Getenv("APISERVER_LOG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		env.ControlPlane.GetAPIServer().Out, env.ControlPlane.GetAPIServer().Err = f, f
		env.ControlPlane.GetAPIServer().Configure().Set("v", "1")
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	t.Logf("kube-apiserver and etcd up in %s at %s", time.Since(start).Round(time.Millisecond), cfg.Host)
	cp := &ControlPlane{env: env, Config: cfg, Dir: t.TempDir(), kubectl: Bin(t, "kubectl")}
	cp.Kubeconfig = cp.UserKubeconfig(t, "e2e-admin", "system:masters")
	return cp
}

// Client returns a controller-runtime client, as the administrator, that
// knows the project's kinds.
func (c *ControlPlane) Client(t tb.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// UserKubeconfig writes a kubeconfig for a user with a client certificate
// and returns its path. A name of the form
// system:serviceaccount:NS:NAME is matched by RBAC bindings to that
// ServiceAccount.
func (c *ControlPlane) UserKubeconfig(t tb.T, name string, groups ...string) string {
	t.Helper()
	u, err := c.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("adding user %s: %v", name, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(c.Dir, fmt.Sprintf("user-%d.kubeconfig", time.Now().UnixNano()))
	if err := os.WriteFile(p, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Clientset is an administrator's client without client-side rate limit,
// for a harness that registers hundreds of nodes (kubectl would be three
// processes per node).
func (c *ControlPlane) Clientset(t tb.T) *kubernetes.Clientset {
	t.Helper()
	if c.clientset == nil {
		cfg := rest.CopyConfig(c.Config)
		cfg.QPS, cfg.Burst = -1, 0
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatalf("a client of the API server: %v", err)
		}
		c.clientset = cs
	}
	return c.clientset
}

// KubectlResult is what one kubectl run printed.
type KubectlResult struct {
	Stdout, Stderr string
	Err            error
}

// Kubectl runs the built kubectl as the administrator.
func (c *ControlPlane) Kubectl(ctx context.Context, stdin []byte, args ...string) KubectlResult {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// A discovery cache of this control plane's own: kubectl keys its
	// cache by host:port, and a port that an earlier API server used (this
	// run's, or a run's with other CRDs) would answer with its discovery.
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig", c.Kubeconfig, "--cache-dir", filepath.Join(c.Dir, "kubectl-cache")}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return KubectlResult{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// MustKubectl runs kubectl and fails the test if it fails.
func (c *ControlPlane) MustKubectl(t tb.T, stdin []byte, args ...string) string {
	t.Helper()
	r := c.Kubectl(context.Background(), stdin, args...)
	if r.Err != nil {
		t.Fatalf("kubectl %v: %v\n%s%s", args, r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Install renders config/test with kubectl, injects the CA of the webhook's
// certificate into it and applies it, then waits for the CRDs.
func (c *ControlPlane) Install(t tb.T, caPEM []byte) {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	rendered := c.MustKubectl(t, nil, "kustomize", filepath.Join(root, "config", "test"))
	manifests, err := certs.InjectCABundle(bytes.NewReader([]byte(rendered)), caPEM)
	if err != nil {
		t.Fatal(err)
	}
	c.MustKubectl(t, manifests, "apply", "-f", "-")
	c.MustKubectl(t, nil, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/staticroutes.networking.digitalocean.com", "crd/staticroutenodestates.networking.digitalocean.com")
}

// StartControllerManager runs kube-controller-manager with only the garbage
// collector: objects owned by a deleted object (a node's
// StaticRouteNodeState, owned by its Node) go with it.
func (c *ControlPlane) StartControllerManager(t tb.T) *Process {
	t.Helper()
	return Start(t, Bin(t, "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig,
		"--controllers", "garbagecollector",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
	)
}
