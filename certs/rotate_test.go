package certs

import (
	"crypto/x509"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy = Policy{Validity: 90 * time.Minute, CAValidity: 6 * time.Hour, DNSNames: []string{"w.ns.svc"}, IPs: []net.IP{net.ParseIP("192.0.2.7")}}
)

// world is what the cluster holds: both Secrets and the webhook
// configuration's bundle.
type world struct {
	ca      *KeyPair
	trust   []*x509.Certificate
	serving *KeyPair
	config  []*x509.Certificate
}

func (w world) seen() Seen {
	s := Seen{CA: w.ca, Trust: w.trust, Serving: w.serving}
	if w.config != nil {
		s.Trusted = [][]*x509.Certificate{w.config}
	}
	return s
}

// rotate is one pass, carried out as Rotate writes it.
func rotate(t *testing.T, w world, now time.Time) (world, Plan) {
	t.Helper()
	plan := PlanRotation(w.seen(), policy, now)
	out, err := plan.Carry(w.seen(), policy, now)
	if err != nil {
		t.Fatal(err)
	}
	w.ca, w.trust, w.serving = out.CA, out.Trust, out.Serving
	if plan.WriteTrust {
		w.config = out.Trust
	}
	return w, plan
}

func TestFirstPassMakesEverything(t *testing.T) {
	w, plan := rotate(t, world{}, t0)
	if !plan.NewCA || !plan.Issue || !plan.WriteTrust {
		t.Fatalf("plan %s", plan)
	}
	if _, err := w.serving.Cert.Verify(x509.VerifyOptions{Roots: pool(w.config), DNSName: "w.ns.svc", CurrentTime: t0}); err != nil {
		t.Fatal(err)
	}
	if _, plan := rotate(t, w, t0.Add(time.Minute)); plan.String() != "nothing to do" {
		t.Fatalf("second pass: %s", plan)
	}
}

func TestServingRenewedWhenAThirdIsLeft(t *testing.T) {
	w, _ := rotate(t, world{}, t0)
	// 90 min valid: renewed from 60 min on, not before.
	if _, plan := rotate(t, w, t0.Add(59*time.Minute)); plan.Issue {
		t.Fatalf("renewed early: %s", plan)
	}
	_, plan := rotate(t, w, t0.Add(61*time.Minute))
	if !plan.Issue || plan.NewCA || plan.WriteTrust || !strings.Contains(plan.IssueReason, "expires") {
		t.Fatalf("plan %s", plan)
	}
}

func TestNewCAServesOnlyOnceTrusted(t *testing.T) {
	w, _ := rotate(t, world{}, t0)
	old := w.ca.Cert
	// The CA (6 h) is due after 4 h; the serving certificate is fresh.
	w, _ = rotate(t, w, t0.Add(4*time.Hour-time.Minute)) // renews the serving certificate
	at := t0.Add(4*time.Hour + time.Minute)
	w2, plan := rotate(t, w, at)
	if !plan.NewCA || plan.Issue || !plan.WriteTrust {
		t.Fatalf("CA due: %s", plan)
	}
	if len(w2.config) != 2 || !w2.config[1].Equal(old) {
		t.Fatalf("the old CA is not trusted beside the new one: %d CAs", len(w2.config))
	}
	// If the configuration was not written (the pass failed there), the
	// next pass writes it and keeps the old CA's certificate.
	failed := w2
	failed.config = w.config
	if _, plan := rotate(t, failed, at.Add(time.Minute)); plan.Issue || !plan.WriteTrust {
		t.Fatalf("config without the new CA: %s", plan)
	}
	_, plan = rotate(t, w2, at.Add(time.Minute))
	if !plan.Issue || plan.NewCA || !strings.Contains(plan.IssueReason, "trusts the new CA") {
		t.Fatalf("after the trust: %s", plan)
	}
}

func TestExpiredCADropped(t *testing.T) {
	w, _ := rotate(t, world{}, t0)
	for at := t0; at.Before(t0.Add(7 * time.Hour)); at = at.Add(10 * time.Minute) {
		w, _ = rotate(t, w, at)
	}
	for _, c := range w.config {
		if !c.NotAfter.After(t0.Add(7 * time.Hour)) {
			t.Errorf("an expired CA (until %s) is still trusted", c.NotAfter)
		}
	}
}

func TestNamesChangedReissues(t *testing.T) {
	w, _ := rotate(t, world{}, t0)
	p := policy
	p.DNSNames = []string{"w.other.svc"}
	plan := PlanRotation(w.seen(), p, t0.Add(time.Minute))
	if !plan.Issue || !strings.Contains(plan.IssueReason, "w.other.svc") {
		t.Fatalf("plan %s", plan)
	}
}

func TestUnreadableCAReplaced(t *testing.T) {
	w, _ := rotate(t, world{}, t0)
	s := w.seen()
	s.CA, s.CAProblem = nil, "the CA Secret holds no usable tls.crt"
	plan := PlanRotation(s, policy, t0.Add(time.Minute))
	if !plan.NewCA || plan.NewCAReason != s.CAProblem || plan.Issue {
		t.Fatalf("plan %s (the serving certificate, signed by a CA still trusted, stays)", plan)
	}
}

func TestPolicyCheck(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Validity: time.Hour, CAValidity: time.Hour, DNSNames: []string{"a"}}, "--ca-validity"},
		{Policy{CAValidity: time.Hour, DNSNames: []string{"a"}}, "--validity"},
		{Policy{Validity: time.Hour, CAValidity: 3 * time.Hour}, "--service"},
	} {
		if err := c.p.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
	if err := policy.Check(); err != nil {
		t.Error(err)
	}
}

// Over three CA lifetimes, with passes at random times up to a sixth of
// the serving certificate's life apart (an hourly CronJob, a year-long
// certificate, and many missed runs) and the webhook serving the serving Secret as
// the kubelet projected it a while ago, what the webhook serves is
// always valid and trusted by the webhook configuration of that moment.
func TestRotationNeverServesUntrusted(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	const lag = 5 * time.Minute // the kubelet's projection of a changed Secret
	var w world
	type served struct {
		at   time.Time
		cert *x509.Certificate
	}
	var history []served
	next := t0
	for at := t0; at.Before(t0.Add(18 * time.Hour)); at = at.Add(time.Minute) {
		if at == next {
			next = at.Add(time.Duration(1+rng.IntN(15)) * time.Minute)
			w, _ = rotate(t, w, at)
			if len(history) == 0 || !history[len(history)-1].cert.Equal(w.serving.Cert) {
				history = append(history, served{at, w.serving.Cert})
			}
		}
		var now *x509.Certificate // what the webhook serves at `at`
		for _, h := range history {
			if !h.at.Add(lag).After(at) || h.at == t0 {
				now = h.cert
			}
		}
		if _, err := now.Verify(x509.VerifyOptions{Roots: pool(w.config), DNSName: "w.ns.svc", CurrentTime: at}); err != nil {
			t.Fatalf("at %s the webhook serves a certificate the API server refuses: %v", at.Sub(t0), err)
		}
	}
	if len(history) < 10 {
		t.Fatalf("only %d serving certificates in 18 h", len(history))
	}
}

func pool(cs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cs {
		p.AddCert(c)
	}
	return p
}
