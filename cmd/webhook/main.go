// Command webhook is staticroute's validating admission webhook: it rejects
// a StaticRoute that breaks a rule of pkg/validate, at `kubectl apply` time,
// naming every bad field.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/staticroute/staticroute/api/v1"
	"github.com/staticroute/staticroute/certs"
	"github.com/staticroute/staticroute/internal/kube"
	"github.com/staticroute/staticroute/internal/serve"
	"github.com/staticroute/staticroute/internal/summary"
	"github.com/staticroute/staticroute/internal/version"
	"github.com/staticroute/staticroute/internal/webhook"
	"github.com/staticroute/staticroute/pkg/validate"
)

type options struct {
	layout, vpc, pod, service, apiServers string
	certDir, host                         string
	port                                  int
	metricsAddr, probeAddr, pprofAddr     string
	reservationTTL, reservationGrace      time.Duration
	maxReservations                       int
	summarize, leaderElect                bool
	summaryQPS                            float64
	http2                                 bool
	leaderElectionNamespace               string
	shutdownDelay                         time.Duration
	stopping                              *stopping // set by SIGTERM: /readyz fails
}

func main() {
	var o options
	flag.StringVar(&o.layout, "layout", "", "the cluster's layout file (layout.yaml of the ConfigMap staticroute-layout, mounted): vpcCIDRs, podCIDRs, serviceCIDRs, apiServerAddresses; a flag below that is given overrides its field")
	flag.StringVar(&o.vpc, "vpc-cidr", "", "comma-separated VPC CIDRs: every gateway must lie in one (not given here or in --layout: what every node router reports in common)")
	flag.StringVar(&o.pod, "pod-cidr", "", "comma-separated pod CIDRs: never a destination (not given here or in --layout: every Node's spec.podCIDRs)")
	flag.StringVar(&o.service, "service-cidr", "", "comma-separated service CIDRs: never a destination (not given here or in --layout: the ServiceCIDR objects)")
	flag.StringVar(&o.apiServers, "api-server-address", "", "comma-separated API server addresses: never a destination")
	flag.StringVar(&o.certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key (a cert-manager Secret); reloaded when they change")
	flag.StringVar(&o.host, "webhook-host", "", "address to serve admission on (empty: all)")
	flag.IntVar(&o.port, "webhook-port", 9443, "port to serve admission on")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "address of net/http/pprof, for profiling (0, the default, disables it; e.g. 127.0.0.1:8082)")
	flag.DurationVar(&o.reservationTTL, "reservation-ttl", 30*time.Second, "how long an admitted route that the cache has not shown yet still blocks overlapping ones")
	flag.DurationVar(&o.reservationGrace, "reservation-grace", 2*time.Second, "how long an admitted route blocks overlapping ones when the API server does not show it: the time its create takes to be committed (a forged review blocks no longer)")
	flag.IntVar(&o.maxReservations, "max-reservations", 1000, "admitted routes held at most while the cache has not shown them; past it, the oldest gives way")
	flag.BoolVar(&o.summarize, "summarize", true, "write each StaticRoute's status from the nodes' reports (on the elected leader only)")
	flag.BoolVar(&o.http2, "enable-http2", false, "serve admission over HTTP/2 too (off: HTTP/1.1 only)")
	flag.Float64Var(&o.summaryQPS, "summary-qps", 20, "status writes per second at most (bursts of twice as many): a thousand routes created at once must not crowd out admission")
	flag.BoolVar(&o.leaderElect, "leader-elect", true, "elect one replica to summarize")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", cmp.Or(os.Getenv("POD_NAMESPACE"), "staticroute-system"), "namespace of the summarizer's Lease (default: $POD_NAMESPACE, the Pod's own from the downward API, or staticroute-system)")
	flag.DurationVar(&o.shutdownDelay, "shutdown-delay", 5*time.Second, "how long admission is still served after SIGTERM, not ready meanwhile, while the API server learns the pod is going (below the pod's terminationGracePeriodSeconds)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *showVersion {
		fmt.Println(version.String("webhook"))
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	o.stopping = &stopping{}
	if err := run(stopAfterDelay(sig, o.shutdownDelay, o.stopping), o); err != nil {
		ctrl.Log.Error(err, "webhook stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	set, err := validate.Load(o.layout, validate.Flags{"vpc-cidr": o.vpc, "pod-cidr": o.pod, "service-cidr": o.service, "api-server-address": o.apiServers})
	if err != nil {
		return err
	}
	if o.summaryQPS <= 0 {
		return fmt.Errorf("--summary-qps: %v: give a rate above 0, such as 20", o.summaryQPS)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return err
	}
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	restCfg = kube.Uncompressed(restCfg)
	if err := checkAccess(ctx, restCfg); err != nil {
		return err
	}
	mgr, err := newManager(o, restCfg, scheme)
	if err != nil {
		return err
	}
	kc, err := kube.NewClient(restCfg)
	if err != nil {
		return err
	}
	conn := kube.NewConnection(ctrl.Log.WithName("watch"))
	layout, layoutSynced, err := watchLayout(mgr, kc, conn, set, ctrl.Log.WithName("layout"))
	if err != nil {
		return err
	}
	store, informer, err := admissionStore(mgr, kc, conn, o)
	if err != nil {
		return err
	}
	if err := registerHook(mgr, scheme, &webhook.Validator{Layout: layout, Store: store}, o); err != nil {
		return err
	}
	if o.summarize {
		if err := addSummarizer(ctx, mgr, restCfg, scheme, o); err != nil {
			return err
		}
	}
	if err := serveHTTP(ctx, o, readiness(mgr, informer, layoutSynced, o.stopping)); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "vpc", set.VPC, "pod", set.Pod, "service", set.Service, "apiServers", set.APIServers, "port", o.port)
	return mgr.Start(ctx)
}

// readiness is /readyz's checks: serving, both caches loaded, and not
// told to stop.
func readiness(mgr ctrl.Manager, informer *kube.Informer, layoutSynced healthz.Checker, s *stopping) map[string]healthz.Checker {
	return map[string]healthz.Checker{
		"not-stopping": s.check,
		"webhook":      mgr.GetWebhookServer().StartedChecker(),
		"staticroutes-synced": func(*http.Request) error {
			if !informer.HasSynced() {
				return errors.New("StaticRoutes not loaded yet")
			}
			return nil
		},
		"layout-synced": layoutSynced,
	}
}

// newManager is the controller-runtime manager that serves admission and
// runs the summarizer.
func newManager(o options, restCfg *rest.Config, scheme *runtime.Scheme) (ctrl.Manager, error) {
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme: scheme,
		// Managed fields are half of a small object: 10,000 routes
		// without them are a smaller heap for the GC to walk.
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		// Metrics, probes and pprof are served by ours (serveHTTP), with
		// read and idle timeouts controller-runtime's servers lack.
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		PprofBindAddress:       "0",
		// No manager-wide election: the manager exits when it loses its
		// lease, and admission must outlive an API server outage. Only
		// the summarizer is elected (summary.RunElected).
		LeaderElection: false,
		WebhookServer: webhook.NewServer(net.JoinHostPort(o.host, strconv.Itoa(o.port)), o.certDir, certs.CertFile, certs.KeyFile, ctrl.Log.WithName("webhook-server"),
			func(c *tls.Config) {
				c.MinVersion = tls.VersionTLS12
				if !o.http2 {
					// HTTP/2's stream resets (CVE-2023-44487, -39325)
					// are an attack on the API server's path; the
					// kubebuilder default.
					c.NextProtos = []string{"http/1.1"}
				}
			}),
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	return mgr, nil
}

// admissionStore is what admission reads: the StaticRoutes, from its own
// informer, with the routers' capped backoff (kube.Backoff): after an
// outage it lists again within a second, where client-go's shared
// informers (controller-runtime's cache) wait up to a minute.
func admissionStore(mgr ctrl.Manager, kc *kube.Client, conn *kube.Connection, o options) (*webhook.Store, *kube.Informer, error) {
	store := webhook.NewStore(o.reservationTTL)
	store.Grace, store.MaxReserved = o.reservationGrace, o.maxReservations
	informer, err := kube.NewInformer(kube.Watch{
		Client: kc.Routes, Resource: "staticroutes", Example: &v1.StaticRoute{}, Conn: conn,
		Transform: kube.Strip(func(sr *v1.StaticRoute) { sr.Status = v1.StaticRouteStatus{} }),
	}, store.Feed())
	if err != nil {
		return nil, nil, fmt.Errorf("watching StaticRoutes: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { informer.Run(ctx); return nil })); err != nil {
		return nil, nil, err
	}
	store.SetSynced(informer.HasSynced)
	store.Live = func(ctx context.Context, name string) (*v1.StaticRoute, error) {
		var sr v1.StaticRoute
		err := kc.Routes.Get().Resource("staticroutes").Name(name).Do(ctx).Into(&sr)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return &sr, err
	}
	return store, informer, nil
}

// registerHook serves v at webhook.Path, with its metrics.
func registerHook(mgr ctrl.Manager, scheme *runtime.Scheme, v *webhook.Validator, o options) error {
	metrics, err := webhook.NewMetrics(crmetrics.Registry, v.Store)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	v.Metrics, v.Store.LiveReads = metrics, metrics.LiveRead
	if err := crmetrics.Registry.Register(webhook.CertificateExpiry(filepath.Join(o.certDir, certs.CertFile))); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// Registered by hand, not by the builder, to time whole requests.
	hook := admission.WithValidator[*v1.StaticRoute](scheme, v).WithRecoverPanic(true)
	hook.LogConstructor = webhook.LogConstructor
	mgr.GetWebhookServer().Register(webhook.Path, metrics.Instrument(hook))
	return nil
}

// addSummarizer runs the status summarizer in mgr: on the replica that
// holds the lease, or on this one alone without --leader-elect.
func addSummarizer(ctx context.Context, mgr ctrl.Manager, restCfg *rest.Config, scheme *runtime.Scheme, o options) error {
	writeCfg := rest.CopyConfig(restCfg)
	writeCfg.QPS, writeCfg.Burst = float32(o.summaryQPS), max(1, int(2*o.summaryQPS))
	writer, err := client.New(writeCfg, client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("summarizer client: %w", err)
	}
	c := &summary.Controller{Client: mgr.GetClient(), Writer: writer, Events: mgr.GetEventRecorder("staticroute-summarizer")}
	if err := c.Index(ctx, mgr); err != nil {
		return err
	}
	log := ctrl.Log.WithName("summarizer")
	run := func(ctx context.Context) {
		if err := c.Run(ctx, mgr); err != nil {
			log.Error(err, "summarizer stopped")
		}
	}
	if !o.leaderElect {
		return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { run(ctx); return nil }))
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("leader election identity: %w", err)
	}
	lease := summary.Lease{Namespace: o.leaderElectionNamespace, Name: "staticroute-summarizer", Identity: host + "_" + string(uuid.NewUUID())}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return summary.RunElected(ctx, restCfg, lease, log, run)
	}))
}

// serveHTTP serves the metrics (controller-runtime's registry, ours
// included), /healthz and /readyz with the ready checks, and pprof if
// asked, each on its own address, with every timeout bounded.
func serveHTTP(ctx context.Context, o options, ready map[string]healthz.Checker) error {
	probes := http.NewServeMux()
	healthy := &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}}
	readyz := &healthz.Handler{Checks: ready}
	probes.Handle("/healthz", http.StripPrefix("/healthz", healthy))
	probes.Handle("/healthz/", http.StripPrefix("/healthz", healthy))
	probes.Handle("/readyz", http.StripPrefix("/readyz", readyz))
	probes.Handle("/readyz/", http.StripPrefix("/readyz", readyz))
	metrics := http.NewServeMux()
	metrics.Handle("/metrics", promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{}))
	for _, s := range []struct {
		flag, addr string
		h          http.Handler
	}{{"--metrics-bind-address", o.metricsAddr, metrics}, {"--health-probe-bind-address", o.probeAddr, probes}, {"--pprof-bind-address", o.pprofAddr, serve.Pprof()}} {
		if s.addr == "0" || s.addr == "" {
			continue
		}
		lns, err := serve.Listen([]string{s.addr})
		if err != nil {
			return fmt.Errorf("%s: %w", s.flag, err)
		}
		serve.Run(ctx, ctrl.Log.WithName("http"), serve.NewServer(s.h), lns, 5*time.Second)
	}
	return nil
}
