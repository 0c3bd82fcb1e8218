package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"sigs.k8s.io/yaml"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/internal/webhook"
	"github.com/staticroute/staticroute/test/corpus"
	"github.com/staticroute/staticroute/test/framework"
)

// admissionEnv is a control plane with config/test installed and the real
// webhook binary serving it, with the corpora's flags.
type admissionEnv struct {
	cp      *framework.ControlPlane
	webhook *framework.Webhook
	root    string
	ca      []byte // the webhook's serving CA
}

func startAdmission(t testing.TB, extraArgs ...string) *admissionEnv {
	t.Helper()
	return startAdmissionWith(t, nil, extraArgs...)
}

// startAdmissionWith is startAdmission with flags for kube-apiserver too.
func startAdmissionWith(t testing.TB, apiServerFlags []framework.Flag, extraArgs ...string) *admissionEnv {
	t.Helper()
	root, err := framework.Root()
	if err != nil {
		t.Fatal(err)
	}
	flags, err := corpus.Flags(root)
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for k, v := range flags {
		args = append(args, "--"+k+"="+v)
	}
	sort.Strings(args)
	args = append(args, extraArgs...)
	cp := framework.StartControlPlane(t, apiServerFlags...)
	certDir, ca := framework.NewWebhookCerts(t)
	cp.Install(t, ca)
	return &admissionEnv{cp: cp, webhook: framework.StartWebhook(t, cp, certDir, args...), root: root, ca: ca}
}

func (e *admissionEnv) file(sub, name string) string {
	return filepath.Join(e.root, corpus.Dir, sub, name)
}

// reset deletes every StaticRoute and waits until the webhook's view of
// them is empty too: then a route over everything, in a group of its own,
// passes a server-side dry run.
func (e *admissionEnv) reset(t testing.TB) {
	t.Helper()
	e.cp.MustKubectl(t, nil, "delete", "staticroutes", "--all", "--wait=true")
	everything := []byte(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: emptiness-probe}
spec: {destinations: ["0.0.0.0/0"], gateway: "10.116.0.4"}
`)
	err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		if r := e.cp.Kubectl(context.Background(), everything, "create", "--dry-run=server", "-f", "-"); r.Err != nil {
			return fmt.Errorf("webhook still sees routes: %s", r.Stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// errorSegments splits kubectl's error output into one piece per field
// error, however the API server joined them ("* a\n* b" or "[a, b]"): a
// piece starts with "spec.PATH: ".
var fieldStart = regexp.MustCompile(`(^|\n|\* |\[|, |: )spec\.[A-Za-z0-9.\[\]]+: `)

func errorSegments(stderr string) []string {
	idx := fieldStart.FindAllStringIndex(stderr, -1)
	var out []string
	for i, m := range idx {
		start := m[0] + strings.Index(stderr[m[0]:m[1]], "spec.")
		end := len(stderr)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, stderr[start:end])
	}
	return out
}

func TestAdmission(t *testing.T) {
	e := startAdmission(t)
	root := e.root
	valid, err := corpus.Load(root, "valid")
	if err != nil {
		t.Fatal(err)
	}
	invalid, err := corpus.Load(root, "invalid")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("every valid file applies with kubectl, printing its warnings", func(t *testing.T) {
		for _, c := range valid {
			t.Run(c.File, func(t *testing.T) {
				defer e.reset(t)
				for _, g := range c.Given {
					e.cp.MustKubectl(t, nil, "apply", "-f", e.file("valid", g))
					time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
				}
				r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", e.file("valid", c.File))
				if r.Err != nil {
					t.Fatalf("rejected: %v\n%s", r.Err, r.Stderr)
				}
				for _, w := range c.Warns {
					if !strings.Contains(r.Stderr, "Warning: ") || !strings.Contains(r.Stderr, w) {
						t.Errorf("want warning %q; kubectl printed %q", w, r.Stderr)
					}
				}
				if len(c.Warns) == 0 && strings.Contains(r.Stderr, "Warning:") {
					t.Errorf("unexpected warning: %s", r.Stderr)
				}
			})
		}
	})

	t.Run("every invalid file is rejected at once naming its fields", func(t *testing.T) {
		for _, c := range invalid {
			t.Run(c.File, func(t *testing.T) {
				defer e.reset(t)
				for _, g := range c.Given {
					e.cp.MustKubectl(t, nil, "apply", "-f", e.file("valid", g))
				}
				r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", e.file("invalid", c.File))
				if r.Err == nil {
					t.Fatalf("admitted:\n%s", r.Stdout)
				}
				segs := errorSegments(r.Stderr)
				for _, w := range c.Wants {
					found := false
					for _, s := range segs {
						found = found || w.Matches(s)
					}
					if !found {
						t.Errorf("want %s\nkubectl printed:\n%s", w, r.Stderr)
					}
				}
				if out := e.cp.MustKubectl(t, nil, "get", "staticroute", c.Object.Name, "-o", "jsonpath={.spec.gateway}", "--ignore-not-found"); len(c.Given) == 0 && out != "" {
					t.Errorf("the object was stored anyway")
				}
			})
		}
	})

	t.Run("the old tutorial's failover: secondary is rejected until primary is deleted", func(t *testing.T) {
		defer e.reset(t)
		oldSecondary := e.file("valid", "old-secondary-after-primary-deleted.yaml")
		e.cp.MustKubectl(t, nil, "apply", "-f", e.file("valid", "primary.yaml"))
		r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", oldSecondary)
		if r.Err == nil || !strings.Contains(r.Stderr, "set spec.group: primary") {
			t.Fatalf("old secondary.yaml beside primary: err=%v\n%s", r.Err, r.Stderr)
		}
		e.cp.MustKubectl(t, nil, "delete", "-f", e.file("valid", "primary.yaml"), "--wait=true")
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			if r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", oldSecondary); r.Err != nil {
				return fmt.Errorf("%s", r.Stderr)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("old secondary.yaml after deleting primary: %v", err)
		}
	})

	t.Run("an update that leaves spec unchanged is admitted, so kopf's finalizer can be removed", func(t *testing.T) {
		defer e.reset(t)
		// Objects from before the webhook may break today's rules: take
		// the webhook configuration away, store two overlapping groups
		// with the old operator's finalizer, and put it back.
		vwc := e.cp.MustKubectl(t, nil, "get", "validatingwebhookconfiguration", "staticroute-validating", "-o", "yaml")
		e.cp.MustKubectl(t, nil, "delete", "validatingwebhookconfiguration", "staticroute-validating")
		for _, name := range []string{"old-a", "old-b"} {
			e.cp.MustKubectl(t, []byte(fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata:
  name: %s
  finalizers: [kopf.zalando.org/KopfFinalizerMarker]
  annotations: {kopf.zalando.org/last-handled-configuration: "{}"}
spec: {destinations: ["198.51.100.0/24"], gateway: "10.116.0.4"}
`, name)), "create", "-f", "-")
		}
		e.cp.MustKubectl(t, []byte(stripServerFields(vwc)), "create", "-f", "-")
		waitWebhookAnswers(t, e)

		r := e.cp.Kubectl(context.Background(), nil, "patch", "staticroute", "old-b", "--type=merge", "-p", `{"spec":{"destinations":["198.51.100.0/25"]}}`)
		if r.Err == nil || !strings.Contains(r.Stderr, `StaticRoute "old-a"`) {
			t.Fatalf("a spec change of the overlapping object must still be judged: err=%v %s", r.Err, r.Stderr)
		}
		e.cp.MustKubectl(t, nil, "annotate", "staticroute", "old-b", "kopf.zalando.org/last-handled-configuration-")
		e.cp.MustKubectl(t, nil, "delete", "staticroute", "old-b", "--wait=false")
		e.cp.MustKubectl(t, nil, "patch", "staticroute", "old-b", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
		err := framework.Eventually(context.Background(), 10*time.Second, func() error {
			if out := e.cp.MustKubectl(t, nil, "get", "staticroute", "old-b", "--ignore-not-found", "-o", "name"); out != "" {
				return fmt.Errorf("old-b still there")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		e.cp.MustKubectl(t, nil, "patch", "staticroute", "old-a", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
	})

	t.Run("kubectl apply -f dir/ with two overlapping files admits exactly one", func(t *testing.T) {
		for i := range 10 {
			dir := overlappingDir(t, 2)
			r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", dir)
			names := strings.Fields(e.cp.MustKubectl(t, nil, "get", "staticroutes", "-o", "name"))
			if len(names) != 1 {
				t.Fatalf("round %d: %d routes admitted (%v); kubectl printed:\n%s%s", i, len(names), names, r.Stdout, r.Stderr)
			}
			if r.Err == nil || !strings.Contains(r.Stderr, "must not overlap") {
				t.Fatalf("round %d: the second file was not rejected for its overlap:\n%s", i, r.Stderr)
			}
			e.reset(t)
		}
	})

	t.Run("overlapping creates of different groups racing each other: exactly one is admitted", func(t *testing.T) {
		// kubectl apply -f dir/ is sequential, and its GET before each
		// create usually gives the webhook's cache time to catch up;
		// parallel appliers (GitOps tools, scripts) do not wait. Without
		// the webhook's reservations several of these get in.
		c := e.cp.Client(t)
		for round := range 5 {
			const n = 8
			start := make(chan struct{})
			errs := make(chan error, n)
			for i := range n {
				go func() {
					<-start
					errs <- c.Create(context.Background(), racingRoute(round, i))
				}()
			}
			close(start)
			admitted := 0
			for range n {
				err := <-errs
				switch {
				case err == nil:
					admitted++
				case !strings.Contains(err.Error(), "must not overlap"):
					t.Fatalf("round %d: a create failed for another reason: %v", round, err)
				}
			}
			if admitted != 1 {
				t.Fatalf("round %d: %d of %d overlapping creates admitted, want exactly 1", round, admitted, n)
			}
			e.reset(t)
		}
	})

	t.Run("a forged AdmissionReview sent straight to the webhook blocks another group for its grace at most", func(t *testing.T) {
		e.reset(t)
		// Anyone who reaches the webhook's Service can POST a review: an
		// admitted one used to be a reservation that refused every
		// overlapping create of other groups for 30 s, as long as it was
		// sent again.
		forged := &v1.StaticRoute{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1.GroupVersion.String(), Kind: "StaticRoute"},
			ObjectMeta: metav1.ObjectMeta{Name: "forged"},
			Spec:       v1.StaticRouteSpec{Group: "forged", Destinations: []string{"0.0.0.0/0"}, Gateway: "10.116.0.4"},
		}
		if allowed, msg := postReview(t, e.ca, forged); !allowed {
			t.Fatalf("the forged review was refused (%s): it should be admitted, and reserved", msg)
		}
		sent := time.Now()
		legit := routeYAML("legit", "", "10.116.0.5", "192.0.2.0/24")
		tries := 0
		var last framework.KubectlResult
		err := framework.Eventually(context.Background(), 30*time.Second, func() error {
			tries++
			last = e.cp.Kubectl(context.Background(), legit, "create", "-f", "-")
			return last.Err
		})
		took := time.Since(sent)
		t.Logf("a create of another group over the forged 0.0.0.0/0 admitted %s after the forged review (%d tries; --reservation-grace 2s)", took.Round(time.Millisecond), tries)
		if err != nil || took > 3*time.Second {
			t.Errorf("admitted after %s (want within the 2 s grace and a second): %v\n%s", took, err, last.Stderr)
		}
	})

	t.Run("a webhook with credentials it cannot use stops saying which identity was refused, and for what", func(t *testing.T) {
		stranger := e.cp.UserKubeconfig(t, "stranger")
		badToken := filepath.Join(t.TempDir(), "kubeconfig")
		b, err := os.ReadFile(stranger)
		if err != nil {
			t.Fatal(err)
		}
		// The same server and CA, and a token nobody issued.
		var kc map[string]any
		if err := yaml.Unmarshal(b, &kc); err != nil {
			t.Fatal(err)
		}
		kc["users"] = []any{map[string]any{"name": "forged", "user": map[string]any{"token": "not-a-token"}}}
		for _, c := range kc["contexts"].([]any) {
			c.(map[string]any)["context"].(map[string]any)["user"] = "forged"
		}
		out, err := yaml.Marshal(kc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(badToken, out, 0o600); err != nil {
			t.Fatal(err)
		}
		for kubeconfig, want := range map[string]string{
			stranger: `the API server refused stranger the list of StaticRoutes`,
			badToken: `did not accept the webhook's credentials (a bearer token)`,
		} {
			p := framework.Start(t, framework.Bin(t, "webhook"), "--kubeconfig", kubeconfig, "--vpc-cidr", "10.116.0.0/20",
				"--webhook-port", "0", "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
			err := framework.Eventually(context.Background(), 20*time.Second, func() error {
				if !p.Exited() {
					return fmt.Errorf("still running")
				}
				return nil
			})
			if err != nil || !strings.Contains(p.Output(), want) {
				t.Errorf("want it to stop saying %q; exited=%v:\n%s", want, p.Exited(), p.Output())
			}
		}
	})

	t.Run("a rotated serving certificate is served without a restart", func(t *testing.T) {
		b, err := certs.New(certs.Options{DNSNames: []string{"staticroute-webhook.staticroute-system.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
		if err != nil {
			t.Fatal(err)
		}
		pemBlock, _ := pem.Decode(b.Cert)
		want, err := x509.ParseCertificate(pemBlock.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pid := e.webhook.Pid()
		if err := b.WriteDir(e.webhook.CertDir); err != nil {
			t.Fatal(err)
		}
		err = framework.Eventually(context.Background(), 30*time.Second, func() error {
			conn, err := tls.Dial("tcp", framework.WebhookAddr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
			if err != nil {
				return err
			}
			defer conn.Close()
			if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(want.SerialNumber) != 0 {
				return fmt.Errorf("still serving serial %s", got)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if e.webhook.Pid() != pid || e.webhook.Exited() {
			t.Fatal("the webhook restarted")
		}
		// TLS below 1.2 is refused.
		if conn, err := tls.Dial("tcp", framework.WebhookAddr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
			conn.Close()
			t.Error("the webhook accepted TLS 1.1")
		}
		// The API server trusts the new CA once it is injected.
		e.cp.Install(t, b.CA)
		waitWebhookAnswers(t, e)
	})

	t.Run("with the webhook stopped, CEL still rejects malformed addresses and gateway edits, nothing unchecked gets in, and metadata still changes", func(t *testing.T) {
		defer e.reset(t)
		e.cp.MustKubectl(t, nil, "apply", "-f", e.file("valid", "primary.yaml"))
		e.webhook.Stop()
		defer e.webhook.Restart(t)

		cases := map[string]struct {
			file string
			want []string
		}{
			"a malformed address": {
				file: e.file("invalid", "malformed-address.yaml"),
				want: []string{`spec.destinations[0]: Invalid value: "34.160.111": must be an IPv4 address (203.0.113.7) or CIDR (203.0.113.0/24)`},
			},
			"a non-canonical CIDR": {
				file: e.file("invalid", "non-canonical-cidr.yaml"),
				want: []string{`spec.destinations[0]: Invalid value: "198.51.100.7/24": must be a canonical CIDR (no host bits set)`},
			},
			"a bare 0.0.0.0": {
				file: e.file("invalid", "bare-zero.yaml"),
				want: []string{`spec.destinations[0]: Invalid value: "0.0.0.0": 0.0.0.0 is not a destination: did you mean 0.0.0.0/0?`},
			},
			"special ranges": {
				file: e.file("invalid", "special-ranges.yaml"),
				want: []string{`spec.destinations[1]: Invalid value: "169.254.169.254": must not lie inside a special range`},
			},
			"a gateway edit": {
				file: e.file("invalid", "gateway-edit.yaml"),
				want: []string{`spec.gateway: Forbidden: spec.gateway is immutable: to fail over, create a new StaticRoute with spec.group set to this route's group`},
			},
			"the gateway as a destination": {
				file: e.file("invalid", "gateway-is-destination.yaml"),
				want: []string{`spec.gateway: Invalid value: spec.gateway must not also be a destination`},
			},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", tc.file)
				if r.Err == nil {
					t.Fatal("admitted")
				}
				if strings.Contains(r.Stderr, "failed calling webhook") {
					t.Fatalf("the webhook was asked, so CEL did not answer first:\n%s", r.Stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.Stderr, w) {
						t.Errorf("want %q\nkubectl printed:\n%s", w, r.Stderr)
					}
				}
			})
		}
		t.Run("an update that leaves spec unchanged still goes through: the old operator's finalizer can be removed", func(t *testing.T) {
			e.cp.MustKubectl(t, nil, "label", "staticroute", "primary", "team=network")
			e.cp.MustKubectl(t, nil, "patch", "staticroute", "primary", "--type=merge", "-p", `{"metadata":{"finalizers":["kopf.zalando.org/KopfFinalizerMarker"]}}`)
			e.cp.MustKubectl(t, nil, "delete", "staticroute", "primary", "--wait=false")
			e.cp.MustKubectl(t, nil, "patch", "staticroute", "primary", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
			if out := e.cp.MustKubectl(t, nil, "get", "staticroute", "primary", "--ignore-not-found", "-o", "name"); out != "" {
				t.Fatalf("primary is still there: %s", out)
			}
		})
		t.Run("a valid route is refused while nobody can check it", func(t *testing.T) {
			r := e.cp.Kubectl(context.Background(), nil, "apply", "-f", e.file("valid", "static-route-ipinfo.io.yaml"))
			if r.Err == nil || !strings.Contains(r.Stderr, "failed calling webhook") {
				t.Fatalf("want a fail-closed refusal; err=%v\n%s", r.Err, r.Stderr)
			}
		})
	})
}

// overlappingDir writes n StaticRoutes of n different groups that all
// overlap 198.51.100.0/24.
func overlappingDir(t *testing.T, n int) string {
	dir := t.TempDir()
	for i := range n {
		dest := "198.51.100.0/24"
		if i > 0 {
			dest = fmt.Sprintf("198.51.100.%d", i)
		}
		y := fmt.Sprintf(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: dir-%02d}
spec: {destinations: [%q], gateway: "10.116.0.4"}
`, i, dest)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.yaml", i)), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// racingRoute is member i of round's race: each in a group of its own,
// nested prefixes of 198.51.100.0/24, so that every two overlap.
func racingRoute(round, i int) *v1.StaticRoute {
	dest := fmt.Sprintf("198.51.100.0/%d", 24+i)
	return &v1.StaticRoute{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("race-%d-%d", round, i)},
		Spec:       v1.StaticRouteSpec{Destinations: []string{dest}, Gateway: "10.116.0.4"},
	}
}

// stripServerFields drops what the API server set, so a dumped object can
// be created again.
func stripServerFields(y string) string {
	var out []string
	for _, l := range strings.Split(y, "\n") {
		switch {
		case strings.HasPrefix(l, "  creationTimestamp:"), strings.HasPrefix(l, "  resourceVersion:"),
			strings.HasPrefix(l, "  uid:"), strings.HasPrefix(l, "  generation:"):
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func waitWebhookAnswers(t *testing.T, e *admissionEnv) {
	t.Helper()
	err := framework.Eventually(context.Background(), 20*time.Second, func() error {
		r := e.cp.Kubectl(context.Background(), []byte(`apiVersion: networking.digitalocean.com/v1
kind: StaticRoute
metadata: {name: answer-probe}
spec: {destinations: ["203.0.113.99"], gateway: "198.51.100.1"}
`), "create", "--dry-run=server", "-f", "-")
		if r.Err == nil || !strings.Contains(r.Stderr, "is outside the VPC") {
			return fmt.Errorf("webhook not answering yet: %v %s", r.Err, r.Stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// postReview sends an AdmissionReview creating sr straight to the
// webhook, as any pod that reaches its Service could, and says whether it
// was allowed.
func postReview(t *testing.T, ca []byte, sr *v1.StaticRoute) (bool, string) {
	t.Helper()
	raw, err := json.Marshal(sr)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("forged-" + sr.Name),
			Kind:      metav1.GroupVersionKind{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Kind: "StaticRoute"},
			Resource:  metav1.GroupVersionResource{Group: v1.GroupVersion.Group, Version: v1.GroupVersion.Version, Resource: "staticroutes"},
			Name:      sr.Name,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := client.Post("https://"+framework.WebhookAddr+webhook.Path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Response == nil {
		t.Fatalf("the webhook's answer (%s): %v", resp.Status, err)
	}
	msg := ""
	if answer.Response.Result != nil {
		msg = answer.Response.Result.Message
	}
	return answer.Response.Allowed, msg
}
