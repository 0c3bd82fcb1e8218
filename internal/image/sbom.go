package image

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// SBOMMediaType is what an SPDX JSON document is in an OCI artifact.
const SBOMMediaType = "application/spdx+json"

// SBOM is an SPDX 2.3 document of a Go binary: the binary, the Go
// standard library it was built with and every module its build info
// names (debug.ReadBuildInfo's list, read back from the binary), with
// purls and the modules' go.sum hashes. It is a function of the binary
// and the commit's time only, so the same build gives the same document.
func SBOM(name, ver string, binary []byte, created time.Time) ([]byte, error) {
	info, err := buildinfo.Read(bytes.NewReader(binary))
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s: reading its build info: %w", name, err)
	}
	sum := sha256.Sum256(binary)
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name + "-" + ver,
		DocumentNamespace: fmt.Sprintf("https://github.com/staticroute/staticroute/spdx/%s-%s-%s", name, ver, hex.EncodeToString(sum[:16])),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "staticroute-release"}},
			Created:  created.UTC().Format(time.RFC3339),
		},
	}
	main := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   common.ElementID("Package-" + spdxID(name)),
		PackageVersion:          ver,
		PackageDownloadLocation: "NOASSERTION",
		PackageChecksums:        []spdx.Checksum{{Algorithm: spdx.SHA256, Value: hex.EncodeToString(sum[:])}},
		PackageLicenseDeclared:  "Apache-2.0",
		PrimaryPackagePurpose:   "APPLICATION",
		PackageComment:          "built from " + info.Path + " by " + info.GoVersion,
		PackageExternalReferences: []*spdx.PackageExternalReference{
			{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: "pkg:golang/" + info.Main.Path + "@" + ver},
		},
	}
	doc.Packages = append(doc.Packages, main)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(main.PackageSPDXIdentifier)), Relationship: "DESCRIBES",
	})
	mods := []*debug.Module{{Path: "stdlib", Version: info.GoVersion}}
	for _, m := range info.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		mods = append(mods, m)
	}
	for _, m := range mods {
		p := modulePackage(m)
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(main.PackageSPDXIdentifier)), RefB: common.MakeDocElementID("", string(p.PackageSPDXIdentifier)), Relationship: "DEPENDS_ON",
		})
	}
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent(" ")); err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// modulePackage is one Go module as an SPDX package, with its purl.
func modulePackage(m *debug.Module) *spdx.Package {
	p := &spdx.Package{
		PackageName:             m.Path,
		PackageSPDXIdentifier:   common.ElementID("Package-" + spdxID(m.Path+"-"+m.Version)),
		PackageVersion:          m.Version,
		PackageDownloadLocation: "NOASSERTION",
		PackageExternalReferences: []*spdx.PackageExternalReference{
			{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: "pkg:golang/" + m.Path + "@" + m.Version},
		},
	}
	if m.Sum != "" {
		// go.sum's h1: is a SHA-256 of the module's file tree.
		p.PackageComment = "go.sum " + m.Sum
	}
	return p
}

var notInID = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// spdxID is s as an SPDX identifier may spell it: letters, digits, "."
// and "-".
func spdxID(s string) string {
	return strings.Trim(notInID.ReplaceAllString(s, "-"), "-")
}
