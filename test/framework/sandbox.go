package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/staticroute/staticroute/internal/image"
	"github.com/staticroute/staticroute/test/tb"
)

// Sandbox is what a kubelet would hand the runtime for one container of a
// Pod, less what a test has no kubelet for: the values of downward-API
// env vars, the ServiceAccount token and the API server's address.
type Sandbox struct {
	Pod       corev1.PodSpec
	Container string // the container's name in Pod
	Image     v1.Image
	// NetNS is the network namespace's path for a hostNetwork Pod: the
	// node's (the test's node namespace); empty: the test's own.
	NetNS string
	// Env resolves the container's env vars that come from the downward
	// API (valueFrom), by name.
	Env map[string]string
	// Args replace the manifest's args that set the same flag
	// (--vpc-cidr=…): the layout a user gives the manifest.
	Args []string
	// Token, CA and Namespace go to the ServiceAccount's usual folder;
	// APIServer (host:port) becomes KUBERNETES_SERVICE_HOST and _PORT.
	Token, CA, Namespace, APIServer string
	// Volumes are host folders for the container's volumeMounts, by
	// volume name (a Secret's files, say).
	Volumes map[string]string
}

// saDir is where a Pod finds its ServiceAccount token.
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Spec is the OCI runtime spec that containerd's CRI plugin gives the
// container: containerd's default Linux spec (pkg/oci: masked paths,
// /proc/sys and the other read-only paths, its default capabilities)
// changed by the Pod's and container's securityContext, the
// RuntimeDefault seccomp profile (contrib/seccomp), host networking as the
// node's network namespace, the env and the mounts.
func (s Sandbox) Spec(id, rootfs string) (*specs.Spec, error) {
	var c *corev1.Container
	for i := range s.Pod.Containers {
		if s.Pod.Containers[i].Name == s.Container {
			c = &s.Pod.Containers[i]
		}
	}
	if c == nil {
		return nil, fmt.Errorf("the Pod has no container %q", s.Container)
	}
	cfg, err := s.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	psc := s.Pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}

	args := append(slices.Clone(cfg.Config.Entrypoint), c.Command...)
	if len(c.Command) > 0 {
		args = slices.Clone(c.Command)
	}
	args = append(args, overrideFlags(c.Args, s.Args)...)

	env := slices.Clone(cfg.Config.Env)
	vars := map[string]string{}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			var ok bool
			if v, ok = s.Env[e.Name]; !ok {
				return nil, fmt.Errorf("env %s comes from the downward API: give its value", e.Name)
			}
		}
		env = append(env, e.Name+"="+v)
		vars[e.Name] = v
	}
	// As the kubelet does: $(NAME) in the command and args is the
	// container's variable NAME.
	for i, a := range args {
		for name, v := range vars {
			a = strings.ReplaceAll(a, "$("+name+")", v)
		}
		args[i] = a
	}
	if host, port, ok := strings.Cut(s.APIServer, ":"); ok {
		env = append(env, "KUBERNETES_SERVICE_HOST="+host, "KUBERNETES_SERVICE_PORT="+port)
	}

	uid, gid := uint32(0), uint32(0)
	if cfg.Config.User != "" {
		if _, err := fmt.Sscan(cfg.Config.User, &uid); err != nil {
			return nil, fmt.Errorf("image user %q is not numeric", cfg.Config.User)
		}
		gid = uid
	}
	for _, u := range []*int64{psc.RunAsUser, csc.RunAsUser} {
		if u != nil {
			uid = uint32(*u)
		}
	}
	for _, g := range []*int64{psc.RunAsGroup, csc.RunAsGroup} {
		if g != nil {
			gid = uint32(*g)
		}
	}
	nonRoot := (psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (csc.RunAsNonRoot != nil && *csc.RunAsNonRoot)
	if nonRoot && uid == 0 {
		return nil, fmt.Errorf("runAsNonRoot, and the image runs as root: the kubelet refuses to start it")
	}

	opts := []oci.SpecOpts{
		oci.WithRootFSPath(rootfs),
		oci.WithProcessArgs(args...),
		oci.WithEnv(env),
		oci.WithUIDGID(uid, gid),
		withCapabilities(csc.Capabilities),
		oci.WithHostname(id),
	}
	if csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if csc.AllowPrivilegeEscalation == nil || !*csc.AllowPrivilegeEscalation {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	seccompType := corev1.SeccompProfileTypeUnconfined
	for _, p := range []*corev1.SeccompProfile{psc.SeccompProfile, csc.SeccompProfile} {
		if p != nil {
			seccompType = p.Type
		}
	}
	if seccompType == corev1.SeccompProfileTypeRuntimeDefault {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	if s.Pod.HostNetwork && s.NetNS != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNS}))
	} else if s.Pod.HostNetwork || s.NetNS == "" {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	var mounts []specs.Mount
	if s.Token != "" {
		mounts = append(mounts, specs.Mount{Destination: saDir, Type: "bind", Source: s.saFolder(rootfs), Options: []string{"rbind", "ro"}})
	}
	for _, m := range c.VolumeMounts {
		src, ok := s.Volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume %s: give its folder", m.Name)
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		mounts = append(mounts, specs.Mount{Destination: m.MountPath, Type: "bind", Source: src, Options: []string{"rbind", mode}})
	}
	opts = append(opts, oci.WithMounts(mounts))

	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	return oci.GenerateSpec(ctx, nil, &containers.Container{ID: id}, opts...)
}

// saFolder is where the ServiceAccount files are written for a bundle.
func (s Sandbox) saFolder(rootfs string) string {
	return filepath.Join(filepath.Dir(rootfs), "serviceaccount")
}

// withCapabilities applies a securityContext's drop and add to
// containerd's default set, as the CRI plugin does.
func withCapabilities(c *corev1.Capabilities) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, ctr *containers.Container, s *oci.Spec) error {
		caps := slices.Clone(s.Process.Capabilities.Bounding)
		if c != nil {
			for _, d := range c.Drop {
				if d == "ALL" {
					caps = nil
					break
				}
				caps = slices.DeleteFunc(caps, func(x string) bool { return x == "CAP_"+string(d) })
			}
			for _, a := range c.Add {
				if n := "CAP_" + string(a); !slices.Contains(caps, n) {
					caps = append(caps, n)
				}
			}
		}
		return oci.WithCapabilities(caps)(ctx, client, ctr, s)
	}
}

// overrideFlags replaces each of args that sets a flag of overrides by
// that override, and appends the other overrides.
func overrideFlags(args, overrides []string) []string {
	name := func(a string) string { n, _, _ := strings.Cut(a, "="); return n }
	out := slices.Clone(args)
	for _, o := range overrides {
		i := slices.IndexFunc(out, func(a string) bool { return name(a) == name(o) })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	return out
}

// RunSandboxed runs the container under runc (Debian's package) in a
// bundle of its own, until the test ends.
func RunSandboxed(t tb.T, id string, s Sandbox) *Process {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc is not installed (apt-get install runc; hack/prereqs.sh does): %v", err)
	}
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := image.Unpack(s.Image, rootfs); err != nil {
		t.Fatal(err)
	}
	if s.Token != "" {
		dir := s.saFolder(rootfs)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"token": s.Token, "ca.crt": s.CA, "namespace": s.Namespace} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec, err := s.Spec(id, rootfs)
	if err != nil {
		t.Fatalf("OCI spec of %s: %v", id, err)
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(os.TempDir(), "staticroute-runc")
	t.Cleanup(func() {
		_ = exec.Command(runc, "--root", state, "kill", id, "KILL").Run()
		_ = exec.Command(runc, "--root", state, "delete", "--force", id).Run()
	})
	return Start(t, runc, "--root", state, "run", "--bundle", bundle, id)
}
