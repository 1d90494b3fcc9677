package configs

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KindDNS is a DNS query to a chosen server, or the same query to several servers until
// every one shows the expected answers (propagation).
const KindDNS = "dns"

// DNSSpec is the dns kind.
type DNSSpec struct {
	// Server is the one server asked; Servers, several (propagation mode). host or host:port.
	Server  string   `koanf:"server"`
	Servers []string `koanf:"servers"`
	Name    string   `koanf:"query_name"`
	Type    string   `koanf:"query_type"`
	// Transport is udp (the default; a truncated answer is asked again over tcp) or tcp.
	Transport string `koanf:"transport"`
	// Recursion is the RD bit of every query (true when unset): false asks an
	// authoritative server for its own data, not a resolver's cache.
	Recursion *bool `koanf:"recursion"`
	// Expect lists answers that must all be present, in the form DNSAnswer gives.
	Expect []string `koanf:"expect"`
	// Poll is how often propagation mode asks the servers that are not there yet.
	Poll time.Duration `koanf:"poll"`
	// QueryTimeout bounds one query; the run as a whole ends at the check's timeout.
	QueryTimeout time.Duration `koanf:"query_timeout"`
}

// DNSTypes are the record types the dns kind asks for.
var DNSTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS"}

// Propagation reports whether the check asks several servers until they agree.
func (s *DNSSpec) Propagation() bool { return len(s.Servers) > 0 }

func (s *DNSSpec) applyDefaults(_ *Config, ch *Check) {
	s.Type = strings.ToUpper(s.Type)
	if s.Type == "" {
		s.Type = "A"
	}
	if s.Transport == "" {
		s.Transport = "udp"
	}
	if s.Recursion == nil {
		s.Recursion = ptr(true)
	}
	if s.Propagation() {
		setDur(&s.Poll, time.Second)
	}
	setDur(&s.QueryTimeout, min(2*time.Second, ch.Timeout))
	s.Server = withDNSPort(s.Server)
	for i := range s.Servers {
		s.Servers[i] = withDNSPort(s.Servers[i])
	}
}

// withDNSPort adds port 53 to a bare host or IP address.
func withDNSPort(s string) string {
	if s == "" {
		return s
	}
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	if !strings.Contains(s, ":") || net.ParseIP(s) != nil {
		return net.JoinHostPort(s, "53")
	}
	return s
}

func (s *DNSSpec) validate(v *validator, ch *Check, p string) {
	switch {
	case s.Server == "" && len(s.Servers) == 0:
		v.errf(p+".server", "set server: 127.0.0.1:53, or servers: [...] with expect to watch an answer propagate", "missing")
	case s.Server != "" && len(s.Servers) > 0:
		v.errf(p+".servers", "use server for one query, or servers (with expect) for propagation, not both", "server and servers are both set")
	case s.Server != "":
		v.hostPort(p+".server", s.Server)
	default:
		for i, sv := range s.Servers {
			v.hostPort(indexPath(p+".servers", i), sv)
		}
		if len(s.Expect) == 0 {
			v.errf(p+".expect", "list the answers every server must show, e.g. expect: [192.0.2.10]", "propagation across servers needs expect")
		}
	}
	if s.Name == "" {
		v.errf(p+".query_name", "set the name to look up, e.g. www.example.com", "missing")
	} else if !validDomainName(s.Name) {
		v.errf(p+".query_name", "write a domain name such as www.example.com or _sip._tcp.example.com", "%q is not a domain name", s.Name)
	}
	if !slices.Contains(DNSTypes, s.Type) {
		v.errf(p+".query_type", DidYouMean(s.Type, DNSTypes)+" (one of "+strings.Join(DNSTypes, ", ")+")", "%q is not a record type vigil asks for", s.Type)
	} else {
		for i, e := range s.Expect {
			if _, err := DNSAnswer(s.Type, e); err != nil {
				v.errf(indexPath(p+".expect", i), dnsAnswerForm[s.Type], "%v", err)
			}
		}
	}
	if s.Transport != "udp" && s.Transport != "tcp" {
		v.errf(p+".transport", "use udp or tcp", "%q is not a DNS transport", s.Transport)
	}
	if (s.QueryTimeout <= 0 || s.QueryTimeout > ch.Timeout) && v.c.written(p+".query_timeout") {
		v.errf(p+".query_timeout", fmt.Sprintf("use a positive duration up to the check's timeout (%s)", ch.Timeout), "%s is out of range", s.QueryTimeout)
	}
	switch {
	case s.Propagation() && (s.Poll < 10*time.Millisecond || s.Poll >= ch.Timeout):
		v.errf(p+".poll", fmt.Sprintf("use 10ms or more, shorter than the check's timeout (%s)", ch.Timeout), "%s is out of range", s.Poll)
	case !s.Propagation() && s.Poll != 0:
		v.errf(p+".poll", "remove poll, or watch an answer propagate: servers: [...] with expect", "poll is how often propagation across servers asks again; one server is asked once a run")
	}
}

// dnsAnswerForm is how an expected answer of each type is written.
var dnsAnswerForm = map[string]string{
	"A": "write an IPv4 address such as 192.0.2.10", "AAAA": "write an IPv6 address such as 2001:db8::10",
	"CNAME": "write a host name such as web.example.com", "NS": "write a host name such as ns1.example.com",
	"MX": `write "preference host", e.g. "10 mail.example.com"`, "TXT": "write the record's text",
	"SRV": `write "priority weight port target", e.g. "10 5 5060 sip.example.com"`,
}

// DNSAnswer normalises an answer of type qtype as the dns kind compares and shows it:
// addresses in Go's canonical form, names in lower case without the final dot, MX as
// "preference host", SRV as "priority weight port target", TXT as its text.
func DNSAnswer(qtype, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch qtype {
	case "A", "AAAA":
		ip := net.ParseIP(s)
		if ip == nil || (qtype == "A") != (ip.To4() != nil) {
			return "", fmt.Errorf("%q is not an %s answer", s, qtype)
		}
		return ip.String(), nil
	case "CNAME", "NS":
		if !validDomainName(s) {
			return "", fmt.Errorf("%q is not a host name", s)
		}
		return hostName(s), nil
	case "MX", "SRV":
		f := strings.Fields(s)
		n := map[string]int{"MX": 2, "SRV": 4}[qtype]
		if len(f) != n || !validDomainName(f[n-1]) {
			return "", fmt.Errorf("%q is not an %s answer", s, qtype)
		}
		for i := range n - 1 {
			x, err := strconv.Atoi(f[i])
			if err != nil || x < 0 || x > 65535 {
				return "", fmt.Errorf("%q is not an %s answer: %q is not a number from 0 to 65535", s, qtype, f[i])
			}
			f[i] = strconv.Itoa(x)
		}
		f[n-1] = hostName(f[n-1])
		return strings.Join(f, " "), nil
	case "TXT":
		return s, nil
	}
	return "", fmt.Errorf("%q is not a record type vigil asks for", qtype)
}

// hostName is a domain name as vigil shows it: lower case, no final dot ("." for the root).
func hostName(s string) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "."
	}
	return lowerASCII(s)
}

// validDomainName: labels of 1 to 63 bytes, 253 in all, no spaces or control characters.
func validDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return true // the root, for NS
	}
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return false
		}
	}
	return true
}
