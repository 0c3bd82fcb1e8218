package validate

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// LayoutConfigMap is the ConfigMap that holds the layout file in a
// cluster, mounted into both workloads; messages name it.
const LayoutConfigMap = "staticroute-layout"

// Layout is the cluster's layout as a user writes it once, in the
// ConfigMap staticroute-layout's layout.yaml, which the webhook and every
// node router read (--layout): the two can no longer disagree.
type Layout struct {
	VPCCIDRs           []string `json:"vpcCIDRs,omitempty"`
	PodCIDRs           []string `json:"podCIDRs,omitempty"`
	ServiceCIDRs       []string `json:"serviceCIDRs,omitempty"`
	APIServerAddresses []string `json:"apiServerAddresses,omitempty"`
}

// ParseLayout reads a layout file strictly: a misspelt field is an error
// naming it, never a setting silently left out.
func ParseLayout(b []byte) (Layout, error) {
	var l Layout
	if err := yaml.UnmarshalStrict(b, &l); err != nil {
		return Layout{}, fmt.Errorf("the layout (layout.yaml of the ConfigMap %s): %w; its fields are vpcCIDRs, podCIDRs, serviceCIDRs and apiServerAddresses, each a list", LayoutConfigMap, err)
	}
	return l, nil
}

// ReadLayout reads and parses the layout file at path; none ("") is an
// empty layout.
func ReadLayout(path string) (Layout, error) {
	if path == "" {
		return Layout{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Layout{}, fmt.Errorf("--layout: %w (in a cluster, the ConfigMap %s is mounted there)", err, LayoutConfigMap)
	}
	return ParseLayout(b)
}

// Load is what both binaries call at start: the layout file at path
// (none: "") with the flags given over it.
func Load(path string, f Flags) (Config, error) {
	l, err := ReadLayout(path)
	if err != nil {
		return Config{}, err
	}
	return LoadConfig(l, path, f)
}

// Flags are the layout's flags as given on a command line, by name
// (vpc-cidr, pod-cidr, service-cidr, api-server-address); an empty value
// is a flag not given.
type Flags map[string]string

// LoadConfig is the cluster's layout as both binaries take it, the one
// function for it: each setting from its flag when the flag is given,
// else from the layout file (file names it in messages; "" when there is
// none). Every mistake is named at once, by the flag or the field. A
// setting left out is empty: Resolve fills it from what the cluster says.
func LoadConfig(l Layout, file string, f Flags) (Config, error) {
	in := func(field string) string {
		return fmt.Sprintf("%s in %s (the ConfigMap %s)", field, file, LayoutConfigMap)
	}
	pick := func(flag, field string, list []string) (what, value string) {
		if v := f[flag]; v != "" {
			return "--" + flag, v
		}
		return in(field), strings.Join(list, ",")
	}
	var c Config
	var errs []error
	var err error
	what, v := pick("vpc-cidr", "vpcCIDRs", l.VPCCIDRs)
	if c.VPC, err = parsePrefixes(what, v); err != nil {
		errs = append(errs, err)
	}
	what, v = pick("pod-cidr", "podCIDRs", l.PodCIDRs)
	if c.Pod, err = parsePrefixes(what, v); err != nil {
		errs = append(errs, err)
	}
	what, v = pick("service-cidr", "serviceCIDRs", l.ServiceCIDRs)
	if c.Service, err = parsePrefixes(what, v); err != nil {
		errs = append(errs, err)
	}
	what, v = pick("api-server-address", "apiServerAddresses", l.APIServerAddresses)
	if c.APIServers, err = parseAddrs(what, v); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}
