package checks

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// zone is a real DNS server (miekg/dns) on a loopback port, UDP and TCP, answering from
// records a test can change while it runs.
type zone struct {
	addr    string
	mu      sync.Mutex
	records map[string][]dns.RR // "name. TYPE" -> records
	rcode   int
	// truncateUDP answers over UDP with the TC bit and no records, as a big answer would.
	truncateUDP bool
	queries     atomic.Int64
	// rd is the RD (recursion desired) bit of each query, in the order they came.
	rd []bool
	// onQuery runs before each answer (a test's way to change records after n queries).
	onQuery func(n int64, z *zone)
}

func newZone(t *testing.T, records ...string) *zone {
	t.Helper()
	z := &zone{records: map[string][]dns.RR{}}
	z.set(t, records...)
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // the same port for UDP and TCP
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if p, err := net.ListenPacket("udp", l.Addr().String()); err == nil {
			ln, pc = l, p
			break
		}
		l.Close()
	}
	if pc == nil {
		t.Fatal("no loopback port free for both UDP and TCP")
	}
	z.addr = ln.Addr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return z
}

// set replaces the records of the names and types given, in zone-file form.
func (z *zone) set(t testing.TB, records ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	fresh := map[string]bool{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		k := strings.ToLower(rr.Header().Name) + " " + dns.TypeToString[rr.Header().Rrtype]
		if !fresh[k] {
			z.records[k], fresh[k] = nil, true
		}
		z.records[k] = append(z.records[k], rr)
	}
}

// with changes the zone while its server runs.
func (z *zone) with(change func()) {
	z.mu.Lock()
	defer z.mu.Unlock()
	change()
}

func (z *zone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	n := z.queries.Add(1)
	z.mu.Lock()
	onQuery := z.onQuery
	z.mu.Unlock()
	if onQuery != nil {
		onQuery(n, z)
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	z.mu.Lock()
	z.rd = append(z.rd, q.RecursionDesired)
	m.Rcode = z.rcode
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	if udp && z.truncateUDP {
		m.Truncated = true
	} else if len(q.Question) == 1 {
		k := strings.ToLower(q.Question[0].Name) + " " + dns.TypeToString[q.Question[0].Qtype]
		m.Answer = append(m.Answer, z.records[k]...)
		m.Ns = append(m.Ns, z.records[strings.ToLower(q.Question[0].Name)+" NS"]...)
	}
	z.mu.Unlock()
	_ = w.WriteMsg(m)
}

// deafDNS is a UDP port that reads queries and never answers: the hostile server.
func deafDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func dnsCheck(extra string) string {
	return "\nchecks:\n  - name: d\n    kind: dns\n    timeout: 2s\n" + extra
}

func TestDNSQuery(t *testing.T) {
	z := newZone(t, "www.example.test. 300 IN A 192.0.2.10", "www.example.test. 60 IN A 192.0.2.11")
	c := buildOne(t, dnsCheck(fmt.Sprintf(`    server: %s
    query_name: www.example.test
    expect: [192.0.2.10]
    assert: ["'192.0.2.11' in answers", "rcode == 'NOERROR'", "ttl == 60", "authoritative", "answer_count == 2", "lookup_ms >= 0"]
`, z.addr)))
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)

	reg := prometheus.NewRegistry()
	m := NewKindMetrics(reg)
	m.Observe(res)
	if got := gaugeValue(t, reg, m, "probe_dns_answer_rrs"); got != 2 {
		t.Errorf("probe_dns_answer_rrs = %v", got)
	}
	gaugeValue(t, reg, m, "probe_dns_lookup_time_seconds")
}

func TestDNSRecordTypes(t *testing.T) {
	z := newZone(t,
		"v6.example.test. 300 IN AAAA 2001:db8::10",
		"alias.example.test. 300 IN CNAME Web.Example.Test.",
		"example.test. 300 IN MX 10 mail.example.test.",
		`example.test. 300 IN TXT "v=spf1 " "-all"`,
		"_sip._tcp.example.test. 300 IN SRV 10 5 5060 sip.example.test.",
		"example.test. 300 IN NS ns1.example.test.",
	)
	for _, tc := range []struct{ typ, name, expect string }{
		{"AAAA", "v6.example.test", "2001:DB8:0::10"},
		{"CNAME", "alias.example.test", "web.example.test."},
		{"MX", "example.test", "10 mail.example.test"},
		{"TXT", "example.test", "v=spf1 -all"},
		{"SRV", "_sip._tcp.example.test", "10 5 5060 sip.example.test"},
		{"ns", "example.test", "ns1.example.test"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			c := buildOne(t, dnsCheck(fmt.Sprintf("    server: %s\n    query_name: %s\n    query_type: %s\n    expect: [%q]\n", z.addr, tc.name, tc.typ, tc.expect)))
			wantOutcome(t, run(t, c, Input{}), Pass)
		})
	}
}

func TestDNSNXDomainFailsByDefault(t *testing.T) {
	z := newZone(t)
	z.with(func() { z.rcode = dns.RcodeNameError })
	res := run(t, buildOne(t, dnsCheck(fmt.Sprintf("    server: %s\n    query_name: gone.example.test\n", z.addr))), Input{})
	wantOutcome(t, res, Fail, `rcode == 'NOERROR' is false: rcode = "NXDOMAIN"`)
}

func TestDNSExpectedAnswerMissing(t *testing.T) {
	z := newZone(t, "www.example.test. 300 IN A 192.0.2.99")
	res := run(t, buildOne(t, dnsCheck(fmt.Sprintf("    server: %s\n    query_name: www.example.test\n    expect: [192.0.2.10]\n", z.addr))), Input{})
	wantOutcome(t, res, Fail, "A www.example.test at "+z.addr+" lacks 192.0.2.10 (answered NOERROR: 192.0.2.99)")
}

// A truncated UDP answer is asked again over TCP, as resolvers do; transport: tcp asks
// over TCP from the start.
// recursion sets the RD bit of every query, over either transport and in propagation mode
// too: true (the default) asks a resolver to recurse, false asks an authoritative server
// for its own data. The zone answers either way, as an authoritative server does: only
// the bits it saw tell the key's effect.
func TestDNSRecursion(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		want      bool
	}{
		{"unset", "", true},
		{"true", "    recursion: true\n", true},
		{"false", "    recursion: false\n", false},
	} {
		for _, mode := range []string{"udp", "tcp", "propagation"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				a := newZone(t, "www.example.test. 60 IN A 192.0.2.20")
				zones := []*zone{a}
				where := fmt.Sprintf("    server: %s\n    transport: %s\n", a.addr, mode)
				if mode == "propagation" {
					b := newZone(t, "www.example.test. 60 IN A 192.0.2.20")
					zones = append(zones, b)
					where = fmt.Sprintf("    servers: [%s, %s]\n    expect: [192.0.2.20]\n", a.addr, b.addr)
				}
				c := buildOne(t, dnsCheck(where+"    query_name: www.example.test\n"+tc.key))
				res := run(t, c, Input{})
				wantOutcome(t, res, Pass)
				for _, z := range zones {
					z.with(func() {
						if len(z.rd) == 0 {
							t.Errorf("%s saw no query", z.addr)
						}
						for i, rd := range z.rd {
							if rd != tc.want {
								t.Errorf("query %d to %s had RD %t; want %t (recursion %s)", i+1, z.addr, rd, tc.want, tc.name)
							}
						}
					})
				}
			})
		}
	}
}

func TestDNSTruncatedRetriesOverTCP(t *testing.T) {
	z := newZone(t, "big.example.test. 300 IN TXT \"large\"")
	z.with(func() { z.truncateUDP = true })
	res := run(t, buildOne(t, dnsCheck(fmt.Sprintf("    server: %s\n    query_name: big.example.test\n    query_type: TXT\n    expect: [large]\n", z.addr))), Input{})
	wantOutcome(t, res, Pass)
	if !strings.Contains(strings.Join(res.Transcript, "\n"), "asking again over tcp") {
		t.Errorf("transcript does not show the TCP retry: %q", res.Transcript)
	}
	before := z.queries.Load()
	res = run(t, buildOne(t, dnsCheck(fmt.Sprintf("    server: %s\n    query_name: big.example.test\n    query_type: TXT\n    transport: tcp\n", z.addr))), Input{})
	wantOutcome(t, res, Pass)
	if n := z.queries.Load() - before; n != 1 {
		t.Errorf("transport tcp sent %d queries, want 1", n)
	}
}

// A server that never replies: the query ends at its timeout, as an error.
func TestDNSSilentServerIsError(t *testing.T) {
	addr := deafDNS(t)
	c := buildOne(t, strings.Replace(dnsCheck(fmt.Sprintf("    server: %s\n    query_name: www.example.test\n", addr)), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Error, addr+" did not answer A www.example.test", "timeout")
}

// Propagation: the release changed a record; the last server shows it only after its
// third query. Every server ends showing it and the run passes.
func TestDNSPropagation(t *testing.T) {
	const want = "www.example.test. 60 IN A 192.0.2.20"
	a, b := newZone(t, want), newZone(t, want)
	late := newZone(t, "www.example.test. 60 IN A 192.0.2.10")
	late.with(func() {
		late.onQuery = func(n int64, z *zone) {
			if n == 3 {
				z.set(t, want)
			}
		}
	})
	c := buildOne(t, dnsCheck(fmt.Sprintf(`    servers: [%s, %s, %s]
    query_name: www.example.test
    expect: [192.0.2.20]
    poll: 10ms
    assert: ["stale == 0", "propagation_ms > 0", "len(servers) == 3"]
`, a.addr, b.addr, late.addr)))
	res := run(t, c, Input{})
	wantOutcome(t, res, Pass)
	if n := late.queries.Load(); n != 3 {
		t.Errorf("the late server was asked %d times, want 3 (until it showed the answer)", n)
	}
	if n := a.queries.Load(); n != 1 {
		t.Errorf("a server that showed the answer was asked %d times, want 1", n)
	}
}

func TestDNSPropagationStaleFails(t *testing.T) {
	a := newZone(t, "www.example.test. 60 IN A 192.0.2.20")
	stale := newZone(t, "www.example.test. 60 IN A 192.0.2.10")
	c := buildOne(t, strings.Replace(dnsCheck(fmt.Sprintf("    servers: [%s, %s]\n    query_name: www.example.test\n    expect: [192.0.2.20]\n    poll: 20ms\n", a.addr, stale.addr)), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "1 of 2 servers did not show 192.0.2.20 for A www.example.test", stale.addr+" answered 192.0.2.10")
	if got := res.Vars["stale_servers"]; fmt.Sprint(got) != "["+stale.addr+"]" {
		t.Errorf("stale_servers = %v", got)
	}
}

// A server that never answers is not a stale one: nothing was measured on it.
func TestDNSPropagationSilentServerIsError(t *testing.T) {
	a := newZone(t, "www.example.test. 60 IN A 192.0.2.20")
	deaf := deafDNS(t)
	c := buildOne(t, strings.Replace(dnsCheck(fmt.Sprintf("    servers: [%s, %s]\n    query_name: www.example.test\n    expect: [192.0.2.20]\n    poll: 20ms\n    query_timeout: 100ms\n", a.addr, deaf)), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Error, "could not measure propagation", deaf+" did not answer")
}

func TestDNSConfigErrors(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{"    query_name: a.test\n", "checks[0].server: missing"},
		{"    server: 127.0.0.1\n    servers: [127.0.0.2]\n    query_name: a.test\n", "checks[0].servers: server and servers are both set"},
		{"    servers: [127.0.0.1]\n    query_name: a.test\n", "checks[0].expect: propagation across servers needs expect"},
		{"    server: 127.0.0.1\n    query_name: a.test\n    query_type: AAA\n", `checks[0].query_type: "AAA" is not a record type`},
		{"    server: 127.0.0.1\n    query_name: a.test\n    expect: [2001:db8::1]\n", `checks[0].expect[0]: "2001:db8::1" is not an A answer`},
		{"    server: 127.0.0.1\n    query_name: a.test\n    query_type: MX\n    expect: [mail.a.test]\n", `write "preference host"`},
		{"    server: 127.0.0.1\n    query_name: 'a b.test'\n", "checks[0].query_name: \"a b.test\" is not a domain name"},
		{"    server: 127.0.0.1\n    query_name: a.test\n    transport: quic\n", "checks[0].transport"},
		{"    server: 127.0.0.1\n    query_name: a.test\n    query_timeout: 5s\n", "checks[0].query_timeout: 5s is out of range"},
		{"    server: 127.0.0.1\n    query_name: a.test\n    assert: ['answer == 1']\n", "checks[0].assert[0]"},
	} {
		wantBuildError(t, dnsCheck(tc.extra), tc.want)
	}
	// A bare address gets port 53.
	c := buildOne(t, dnsCheck("    server: ::1\n    query_name: a.test\n"))
	if got := c.prober.(*DNS).server; got != "[::1]:53" {
		t.Errorf("server = %q", got)
	}
}

// FuzzDNSAnswers: whatever a server sends, reading its answers never panics and every
// answer reads back as itself.
func FuzzDNSAnswers(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeMX)
	rr, _ := dns.NewRR("example.test. 300 IN MX 10 Mail.Example.Test.")
	m.Answer = append(m.Answer, rr)
	if b, err := m.Pack(); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg dns.Msg
		if err := msg.Unpack(data); err != nil {
			return
		}
		for _, typ := range []string{"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS"} {
			answers, ttl := answersOf(&msg, dns.StringToType[typ], typ)
			if ttl < 0 {
				t.Fatalf("ttl %d", ttl)
			}
			_ = answers
		}
	})
}

// A server that answers SERVFAIL (a zone it failed to load) or REFUSED (not its zone: a
// wrong server in the list) is named with its rcode, not as one that answered "no records".
func TestDNSPropagationNamesTheRcode(t *testing.T) {
	a := newZone(t, "www.example.test. 60 IN A 192.0.2.20")
	broken := newZone(t)
	broken.with(func() { broken.rcode = dns.RcodeServerFailure })
	c := buildOne(t, strings.Replace(dnsCheck(fmt.Sprintf("    servers: [%s, %s]\n    query_name: www.example.test\n    expect: [192.0.2.20]\n    poll: 20ms\n", a.addr, broken.addr)), "timeout: 2s", "timeout: 300ms", 1))
	res := run(t, c, Input{})
	wantOutcome(t, res, Fail, "1 of 2 servers did not show 192.0.2.20", broken.addr+" answered SERVFAIL: no records")
}

// TestDNSDefaults holds KINDS.md's defaults: query_type A, transport udp, query_timeout
// min(2s, timeout), poll 1s in propagation mode, port 53 when left out.
func TestDNSDefaults(t *testing.T) {
	one := func(extra string) *DNS { return buildOne(t, dnsCheck(extra)).prober.(*DNS) }
	d := one("    server: 127.0.0.1\n    query_name: www.example.test\n")
	if d.typeName != "A" || d.qtype != dns.TypeA || d.transport != "udp" || !d.recursion || d.qtimeout != 2*time.Second || d.server != "127.0.0.1:53" {
		t.Fatalf("type %s, transport %s, recursion %t, query_timeout %s, server %s", d.typeName, d.transport, d.recursion, d.qtimeout, d.server)
	}
	d = buildOne(t, strings.Replace(dnsCheck("    server: 127.0.0.1:5353\n    query_name: www.example.test\n"), "timeout: 2s", "timeout: 700ms", 1)).prober.(*DNS)
	if d.qtimeout != 700*time.Millisecond {
		t.Fatalf("query_timeout %s with a 700ms timeout", d.qtimeout)
	}
	d = one("    servers: [127.0.0.1, \"[::1]:5353\"]\n    query_name: www.example.test\n    expect: [192.0.2.1]\n")
	if d.poll != time.Second || !slices.Equal(d.servers, []string{"127.0.0.1:53", "[::1]:5353"}) {
		t.Fatalf("poll %s, servers %q", d.poll, d.servers)
	}
	wantBuildError(t, dnsCheck("    server: 127.0.0.1\n    query_name: www.example.test\n    poll: 1s\n"), "checks[0].poll")
}
