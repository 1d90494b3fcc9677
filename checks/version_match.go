package checks

import "strings"

// sameVersion reports whether an instance that says it runs reported runs deployed, the
// version a deploy was registered with. The two are often written apart: a deploy
// registered from its git tag, v1.4.0, of a binary that says 1.4.0, or 1.4.0+g3f2a1c with
// the build's commit as semver build metadata (which semver leaves out of a version's
// precedence). A leading v before a digit is not part of the version, and build metadata
// on one side only is a detail the other did not give; metadata on both sides that differs
// names two builds, which are two versions (a rebuild pushed as a deploy).
func sameVersion(reported, deployed string) bool {
	if reported == deployed {
		return true
	}
	rc, rm := splitVersion(reported)
	dc, dm := splitVersion(deployed)
	return rc != "" && rc == dc && (rm == "" || dm == "" || rm == dm)
}

// splitVersion is v without a leading v before a digit, cut at its first +: the version
// and its build metadata.
func splitVersion(v string) (core, build string) {
	v = strings.TrimSpace(v)
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	core, build, _ = strings.Cut(v, "+")
	return core, build
}

// apartNote says, for a transcript, that reported was taken for deployed only as written
// apart (sameVersion, not equality): ", the deploy's v1.4.0, written apart"; "" when the
// two are written alike or are not one version.
func apartNote(reported, deployed string) string {
	if reported == deployed || !sameVersion(reported, deployed) {
		return ""
	}
	return ", the deploy's " + Trim(deployed, 100) + ", written apart"
}
