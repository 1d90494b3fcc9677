package configs

import (
	"net/url"
	"regexp"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

const nameFix = "use letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63 characters"

// validator collects semantic errors, located through the config's line index.
type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) errf(path, fix, format string, args ...any) {
	v.errs = append(v.errs, v.c.Err(path, fix, format, args...))
}

// url checks an absolute http(s) URL.
func (v *validator) url(p, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		v.errf(p, "write an absolute URL starting with http:// or https://", "%q needs an http or https scheme", s)
	case u.Host == "":
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q has no host", s)
	}
}

// regexp compiles a configured regular expression at p; nil when it does not compile.
func (v *validator) regexp(p, src string) *regexp.Regexp {
	re, err := regexp.Compile(src)
	if err != nil {
		v.errf(p, "write a Go regular expression (RE2)", "bad regex: %v", err)
		return nil
	}
	return re
}

// countSet counts the options that are set, for "exactly one of" rules.
func countSet(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}
