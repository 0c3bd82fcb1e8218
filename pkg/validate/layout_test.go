package validate

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigFlagsOverTheFile(t *testing.T) {
	l, err := ParseLayout([]byte("vpcCIDRs: [198.51.100.0/24]\npodCIDRs: [198.18.64.0/18]\nserviceCIDRs: [198.18.128.0/18]\napiServerAddresses: [203.0.113.9]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(l, "layout.yaml", Flags{"pod-cidr": "198.19.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if c.VPC[0] != netip.MustParsePrefix("198.51.100.0/24") || c.Service[0] != netip.MustParsePrefix("198.18.128.0/18") || c.APIServers[0] != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("from the file: %+v", c)
	}
	if len(c.Pod) != 1 || c.Pod[0] != netip.MustParsePrefix("198.19.0.0/16") {
		t.Errorf("the flag given does not override the file: %v", c.Pod)
	}
}

func TestLoadConfigNamesEveryMistakeBySetting(t *testing.T) {
	l := Layout{VPCCIDRs: []string{"198.51.100.1/24"}, PodCIDRs: []string{"nonsense"}}
	_, err := LoadConfig(l, "/etc/staticroute/layout.yaml", Flags{"service-cidr": "2001:db8::/32", "api-server-address": "x"})
	for _, want := range []string{
		`vpcCIDRs in /etc/staticroute/layout.yaml (the ConfigMap staticroute-layout): "198.51.100.1/24" has host bits set; did you mean 198.51.100.0/24?`,
		`podCIDRs in /etc/staticroute/layout.yaml (the ConfigMap staticroute-layout): "nonsense" is not a CIDR`,
		`--service-cidr: "2001:db8::/32" is IPv6`,
		`--api-server-address: "x"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to say %s", err, want)
		}
	}
}

func TestLoadConfigLeavesOutWhatIsNotSet(t *testing.T) {
	c, err := LoadConfig(Layout{}, "/etc/staticroute/layout.yaml", nil)
	if err != nil || len(c.VPC)+len(c.Pod)+len(c.Service)+len(c.APIServers) != 0 {
		t.Fatalf("an empty layout: %+v, %v; want nothing set, for Resolve to discover", c, err)
	}
}

func TestParseLayoutRefusesAMisspeltField(t *testing.T) {
	_, err := ParseLayout([]byte("vpcCIDR: [198.51.100.0/24]\n"))
	if err == nil || !strings.Contains(err.Error(), "vpcCIDR") || !strings.Contains(err.Error(), "its fields are vpcCIDRs") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseLayout([]byte("vpcCIDRs: 198.51.100.0/24\n")); err == nil {
		t.Error("a string where a list belongs was taken")
	}
}

func TestLoadReadsTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "layout.yaml")
	if err := os.WriteFile(p, []byte("vpcCIDRs: [198.51.100.0/24]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(p, Flags{}); err != nil || len(c.VPC) != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), nil); err == nil || !strings.Contains(err.Error(), "--layout") {
		t.Fatalf("a missing file: %v", err)
	}
}

// Whatever the ConfigMap holds, reading it never panics, and what it
// accepts loads or is refused with a message naming the setting.
func FuzzLayout(f *testing.F) {
	f.Add([]byte("vpcCIDRs: [198.51.100.0/24]\npodCIDRs: [198.18.64.0/18]\n"))
	f.Add([]byte("vpcCIDRs: [\"198.51.100.1/24\", x]\napiServerAddresses: [203.0.113.9]\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLayout(b)
		if err != nil {
			return
		}
		c, err := LoadConfig(l, "layout.yaml", nil)
		if err != nil && !strings.Contains(err.Error(), "layout.yaml") {
			t.Fatalf("an error that names no setting: %v", err)
		}
		// Nothing discovered: what the file leaves out is named.
		if _, err := Resolve(c, Discovered{}); err != nil && !strings.Contains(err.Error(), "of the ConfigMap staticroute-layout") {
			t.Fatalf("an unresolved layout whose error names no setting: %v", err)
		}
	})
}

func TestParseLayoutOfOnlyComments(t *testing.T) {
	l, err := ParseLayout([]byte("# vpcCIDRs: [10.116.0.0/20]\n# podCIDRs: []\n"))
	if err != nil || len(l.VPCCIDRs)+len(l.PodCIDRs)+len(l.ServiceCIDRs)+len(l.APIServerAddresses) != 0 {
		t.Fatalf("%+v, %v", l, err)
	}
}
