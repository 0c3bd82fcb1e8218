package certs

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Policy is how long certificates live and whom the serving one names.
type Policy struct {
	Validity   time.Duration // of a serving certificate
	CAValidity time.Duration // of a CA
	DNSNames   []string
	IPs        []net.IP
}

// Check says what is wrong with p, naming the flag to fix.
func (p Policy) Check() error {
	switch {
	case p.Validity <= 0:
		return fmt.Errorf("--validity must be positive")
	case p.CAValidity < 2*p.Validity:
		return fmt.Errorf("--ca-validity (%s) must be at least twice --validity (%s): a CA is renewed when a third of it is left, and the serving certificates it signs must fit in it", p.CAValidity, p.Validity)
	case len(p.DNSNames) == 0 && len(p.IPs) == 0:
		return fmt.Errorf("the serving certificate names nothing: give --service (or --ip)")
	}
	return nil
}

// Seen is what a rotation starts from, as read from the cluster.
type Seen struct {
	// CA is the CA Secret's certificate and key; nil when there is none
	// or it does not parse (CAProblem says why).
	CA        *KeyPair
	CAProblem string
	// Trust is every CA that the two Secrets' ca.crt name.
	Trust []*x509.Certificate
	// Serving is the serving Secret's certificate and key; nil when there
	// is none or it does not parse (ServingProblem says why).
	Serving        *KeyPair
	ServingProblem string
	// Trusted is what the webhook configuration's caBundle holds, for
	// each of its webhooks.
	Trusted [][]*x509.Certificate
}

// Plan is what one rotation does, in this order: the CA Secret, the
// webhook configuration's caBundle, the serving Secret.
type Plan struct {
	NewCA       bool   // make a new CA; it signs from now on
	NewCAReason string //
	// Older are the CAs trusted beside the one that signs, newest first:
	// every other one still valid, so that a serving certificate of an
	// old CA is trusted until it is replaced. What is trusted after this
	// run is the signing CA (new or kept), then these.
	Older []*x509.Certificate
	// WriteTrust: the webhook configuration must be given the bundle.
	WriteTrust bool
	// Issue: a new serving certificate from the signing CA.
	Issue       bool
	IssueReason string
}

// String is the plan in words, for the Job's log.
func (p Plan) String() string {
	var parts []string
	if p.NewCA {
		parts = append(parts, "new CA ("+p.NewCAReason+")")
	}
	if p.WriteTrust {
		parts = append(parts, "write the CA bundle into the webhook configuration")
	}
	if p.Issue {
		parts = append(parts, "new serving certificate ("+p.IssueReason+")")
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, "; ")
}

// Due says whether a certificate valid for validity is to be renewed at
// now: when less than a third of validity is left (cert-manager's
// default), so that the rotations between have time to spread it.
func Due(c *x509.Certificate, validity time.Duration, now time.Time) bool {
	return !now.Before(c.NotAfter.Add(-validity / 3))
}

// PlanRotation decides what to renew. The rules:
//   - the CA is renewed when due; the old one stays trusted until it
//     expires;
//   - the serving certificate is renewed when due, when it names other
//     hosts than the policy, when no CA of the bundle signed it, or when
//     the signing CA is not the one that signed it and every webhook
//     already trusted the signing CA when this run began: so a new CA
//     signs only once the API server trusts it, and a rotation never
//     serves what the API server does not trust yet, unless nothing else
//     can serve at all.
func PlanRotation(s Seen, p Policy, now time.Time) Plan {
	var plan Plan
	signer := s.CA
	switch {
	case s.CA == nil && s.CAProblem != "":
		plan.NewCA, plan.NewCAReason = true, s.CAProblem
	case s.CA == nil:
		plan.NewCA, plan.NewCAReason = true, "there is none"
	case Due(s.CA.Cert, p.CAValidity, now):
		plan.NewCA, plan.NewCAReason = true, "the old one expires at "+s.CA.Cert.NotAfter.UTC().Format(time.RFC3339)
	}
	var old []*x509.Certificate
	candidates := s.Trust
	if s.CA != nil {
		candidates = append([]*x509.Certificate{s.CA.Cert}, candidates...)
	}
	for _, c := range candidates {
		if !c.IsCA || !now.Before(c.NotAfter) || (!plan.NewCA && c.Equal(signer.Cert)) || slices.ContainsFunc(old, c.Equal) {
			continue
		}
		old = append(old, c)
	}
	slices.SortStableFunc(old, func(a, b *x509.Certificate) int { return b.NotBefore.Compare(a.NotBefore) })
	plan.Older = old
	var bundle []*x509.Certificate // known unless a new CA is to be made
	if !plan.NewCA {
		bundle = append([]*x509.Certificate{signer.Cert}, old...)
	}

	// The trust is written whenever a webhook's differs; with a new CA it
	// always does.
	plan.WriteTrust = plan.NewCA || len(s.Trusted) == 0
	for _, t := range s.Trusted {
		if !plan.NewCA && !bytes.Equal(EncodeCerts(t), EncodeCerts(bundle)) {
			plan.WriteTrust = true
		}
	}

	switch sv := s.Serving; {
	case sv == nil && s.ServingProblem != "":
		plan.Issue, plan.IssueReason = true, s.ServingProblem
	case sv == nil:
		plan.Issue, plan.IssueReason = true, "there is none"
	case !sameNames(sv.Cert, p):
		plan.Issue, plan.IssueReason = true, fmt.Sprintf("it names %v, not %v", names(sv.Cert.DNSNames, sv.Cert.IPAddresses), names(p.DNSNames, p.IPs))
	case Due(sv.Cert, p.Validity, now):
		plan.Issue, plan.IssueReason = true, "the old one expires at "+sv.Cert.NotAfter.UTC().Format(time.RFC3339)
	case !signedByAny(sv.Cert, slices.Concat(bundle, old)):
		plan.Issue, plan.IssueReason = true, "no CA still trusted signed it"
	case !plan.NewCA && sv.Cert.CheckSignatureFrom(signer.Cert) != nil && trustedByAll(s.Trusted, signer.Cert):
		plan.Issue, plan.IssueReason = true, "the webhook configuration trusts the new CA now; the old CA's certificate goes"
	}
	return plan
}

func signedByAny(c *x509.Certificate, cas []*x509.Certificate) bool {
	return slices.ContainsFunc(cas, func(ca *x509.Certificate) bool { return c.CheckSignatureFrom(ca) == nil })
}

func trustedByAll(trusted [][]*x509.Certificate, ca *x509.Certificate) bool {
	for _, t := range trusted {
		if !slices.ContainsFunc(t, ca.Equal) {
			return false
		}
	}
	return len(trusted) > 0
}

func sameNames(c *x509.Certificate, p Policy) bool {
	return slices.Equal(names(c.DNSNames, c.IPAddresses), names(p.DNSNames, p.IPs))
}

func names(dns []string, ips []net.IP) []string {
	out := slices.Clone(dns)
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Outcome is what the two Secrets and the webhook configuration hold
// after a plan is carried out.
type Outcome struct {
	CA      *KeyPair
	Trust   []*x509.Certificate // newest first
	Serving *KeyPair
}

// Carry makes the keys and certificates the plan calls for.
func (p Plan) Carry(s Seen, pol Policy, now time.Time) (Outcome, error) {
	out := Outcome{CA: s.CA, Serving: s.Serving}
	if p.NewCA {
		ca, err := NewCA(now, pol.CAValidity)
		if err != nil {
			return Outcome{}, err
		}
		out.CA = ca
	}
	out.Trust = append([]*x509.Certificate{out.CA.Cert}, p.Older...)
	if p.Issue {
		leaf, err := Issue(out.CA, now, pol.Validity, pol.DNSNames, pol.IPs)
		if err != nil {
			return Outcome{}, err
		}
		out.Serving = leaf
	}
	return out, nil
}
