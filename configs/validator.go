package configs

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
	if !strings.Contains(s, "://") {
		// 127.0.0.1:8080/healthz is not a URL to Go, and localhost:8080 is one whose scheme
		// is "localhost": give the URL to write.
		if w, werr := url.Parse("http://" + s); werr == nil && w.Hostname() != "" && !strings.HasSuffix(w.Host, ":") {
			v.errf(p, "write it with its scheme: http://"+s+" or https://"+s, "%q has no scheme", s)
			return
		}
	}
	switch {
	case err != nil:
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q is not a URL", s)
	case u.Scheme != "http" && u.Scheme != "https":
		v.errf(p, "write an absolute URL starting with http:// or https://", "%q needs an http or https scheme", s)
	case u.Host == "":
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q has no host", s)
	case u.Hostname() == "" || strings.HasSuffix(u.Host, ":"):
		// http://:8080/ or http://web:/ is what an unset ${HOST} or ${PORT} leaves: the
		// first failed every run with "no Host in request URL", after validate passed.
		v.errf(p, "write an absolute URL such as http://127.0.0.1:8080/path", "%q has an empty host or port", s)
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

// hostPort checks a host:port address such as 127.0.0.1:25 or mail.example:587.
func (v *validator) hostPort(p, s string) {
	host, port, err := net.SplitHostPort(s)
	switch {
	case s == "":
		v.errf(p, "set host:port, e.g. 127.0.0.1:443", "missing")
	case err != nil:
		v.errf(p, "write host:port, e.g. 127.0.0.1:443 or [::1]:443", "%q is not host:port", s)
	case host == "":
		v.errf(p, "name the host, e.g. 127.0.0.1:"+port, "%q has no host", s)
	default:
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.errf(p, "use a port from 1 to 65535", "%q has no valid port", s)
		}
	}
}

// tls resolves a relative ca_file against the config's folder and checks it can be read;
// p is the path of the TLS block.
func (v *validator) tls(p string, t *TLS) {
	if t.CAFile == "" {
		return
	}
	if !filepath.IsAbs(t.CAFile) {
		t.CAFile = filepath.Join(v.c.Dir, t.CAFile)
	}
	if _, err := os.Stat(t.CAFile); err != nil {
		v.errf(p+".ca_file", "point it at a PEM file of CA certificates", "cannot read %s", t.CAFile)
	}
}
