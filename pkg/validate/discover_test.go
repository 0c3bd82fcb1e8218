package validate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestResolveSetWinsOverDiscovered(t *testing.T) {
	set := Config{VPC: prefixes("198.51.100.0/24"), Service: prefixes("198.18.128.0/18")}
	d := Discovered{VPC: prefixes("198.51.0.0/16"), Pod: prefixes("198.18.64.0/24", "198.18.65.0/24"), Service: prefixes("198.18.255.0/24")}
	c, err := Resolve(set, d)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.VPC, set.VPC) || !slices.Equal(c.Service, set.Service) {
		t.Errorf("a set value did not win: %+v", c)
	}
	if !slices.Equal(c.Pod, prefixes("198.18.64.0/23")) {
		t.Errorf("the nodes' pod CIDRs, aggregated: %v", c.Pod)
	}
}

func TestResolveNamesEverySettingNeitherSetNorDiscovered(t *testing.T) {
	_, err := Resolve(Config{}, Discovered{NoVPC: "no link holds the node's address 198.51.100.7"})
	for _, want := range []string{
		"vpcCIDRs is not set and could not be discovered: no link holds the node's address 198.51.100.7; set vpcCIDRs in layout.yaml of the ConfigMap staticroute-layout (or --vpc-cidr)",
		"podCIDRs is not set and could not be discovered: no Node has spec.podCIDRs",
		"set podCIDRs in layout.yaml of the ConfigMap staticroute-layout (or --pod-cidr)",
		"serviceCIDRs is not set and could not be discovered: the API server holds no ServiceCIDR",
		"(or --service-cidr)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to say %s", err, want)
		}
	}
	if _, err := Resolve(Config{VPC: prefixes("198.51.100.0/24")}, Discovered{Pod: prefixes("198.18.64.0/24"), Service: prefixes("198.18.255.0/24")}); err != nil {
		t.Errorf("everything set or discovered: %v", err)
	}
}

func TestCheckRangesLeavesTheVPCOut(t *testing.T) {
	d := Discovered{Pod: prefixes("198.18.64.0/24"), Service: prefixes("198.18.255.0/24")}
	if err := CheckRanges(Config{}, d); err != nil {
		t.Errorf("pod and Service ranges known, no VPC: %v", err)
	}
	if err := CheckRanges(Config{}, Discovered{Service: d.Service}); err == nil || !strings.Contains(err.Error(), "podCIDRs is not set") || strings.Contains(err.Error(), "vpcCIDRs") {
		t.Errorf("no pod range: %v", err)
	}
}

func TestAggregateKeepsIPv4AsFewestPrefixes(t *testing.T) {
	var nodes []netip.Prefix
	for i := range 256 {
		nodes = append(nodes, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24))
	}
	nodes = append(nodes, netip.MustParsePrefix("2001:db8::/64"), netip.MustParsePrefix("198.18.3.0/24"))
	if got := Aggregate(nodes); !slices.Equal(got, prefixes("198.18.0.0/16")) {
		t.Errorf("256 node /24s: %v", got)
	}
	if got := Aggregate(nil); len(got) != 0 {
		t.Errorf("nothing: %v", got)
	}
}

func TestCommonVPCIsWhatEveryNodeHas(t *testing.T) {
	for _, c := range []struct {
		name    string
		reports map[string][]netip.Prefix
		want    []netip.Prefix
		why     string
	}{
		{"none yet", nil, nil, "no node router has reported its VPC yet"},
		{"agree", map[string][]netip.Prefix{"a": prefixes("198.51.100.0/24"), "b": prefixes("198.51.100.0/24")}, prefixes("198.51.100.0/24"), ""},
		// A node reporting a wider VPC cannot widen what is admitted.
		{"one wider", map[string][]netip.Prefix{"a": prefixes("198.51.100.0/24"), "b": prefixes("198.51.0.0/16")}, prefixes("198.51.100.0/24"), ""},
		{"disjoint", map[string][]netip.Prefix{"b": prefixes("198.51.100.0/24"), "a": prefixes("203.0.113.0/24")}, nil,
			"the nodes report VPCs with no address in common (a: [203.0.113.0/24]; b: [198.51.100.0/24])"},
		{"a node reports nothing", map[string][]netip.Prefix{"a": prefixes("198.51.100.0/24"), "b": nil}, nil, "no address in common"},
	} {
		got, why := CommonVPC(c.reports)
		if !slices.Equal(got, c.want) || !strings.Contains(why, c.why) || (c.why == "") != (why == "") {
			t.Errorf("%s: %v, %q; want %v, %q", c.name, got, why, c.want, c.why)
		}
	}
}
