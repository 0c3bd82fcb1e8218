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

func TestLoadConfigNeedsTheVPC(t *testing.T) {
	for _, c := range []struct {
		file, want string
	}{
		{"", "--vpc-cidr is required"},
		{"/etc/staticroute/layout.yaml", "give vpcCIDRs in /etc/staticroute/layout.yaml (the ConfigMap staticroute-layout), or --vpc-cidr"},
	} {
		if _, err := LoadConfig(Layout{}, c.file, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q: %v, want %q", c.file, err, c.want)
		}
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
		if _, err := LoadConfig(l, "layout.yaml", nil); err != nil && !strings.Contains(err.Error(), "layout.yaml") {
			t.Fatalf("an error that names no setting: %v", err)
		}
	})
}
