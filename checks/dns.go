package checks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vigil-monitor/vigil/configs"
)

// dnsQueryVars are set by a query to one server; dnsPropagationVars by propagation mode.
var (
	dnsQueryVars = types.Map{
		"rcode":            types.String,
		"answers":          types.Array(types.String),
		"answer_count":     types.Int,
		"authority_count":  types.Int,
		"additional_count": types.Int,
		"ttl":              types.Int,
		"lookup_ms":        types.Float64,
		"authoritative":    types.Bool,
	}
	dnsPropagationVars = types.Map{
		"propagation_ms": types.Float64,
		"stale":          types.Int,
		"stale_servers":  types.Array(types.String),
		"servers":        types.TypeOf(map[string][]string{}),
	}
	dnsVars = withVars(dnsQueryVars, dnsPropagationVars)
)

// defaultDNSAssert judges a single query when the config gives no assertions.
var defaultDNSAssert = []string{"rcode == 'NOERROR'", "len(answers) > 0"}

// dnsUDPSize is the EDNS0 buffer vigil offers: large enough for most answers, small enough
// not to fragment; a truncated answer is asked again over TCP.
const dnsUDPSize = 1232

// DNS is the dns kind: one query to one server, or (propagation mode) the same query to
// several servers until each shows the expected answers. Every query opens its own socket
// and vigil caches nothing, so a deploy's verification sees what the servers answer now.
type DNS struct {
	server    string
	servers   []string
	name      string
	qtype     uint16
	typeName  string
	transport string
	recursion bool
	expect    []string
	poll      time.Duration
	qtimeout  time.Duration
}

// dnsAnswer is one server's answer, reduced to what vigil compares and shows.
type dnsAnswer struct {
	msg     *dns.Msg
	rtt     time.Duration
	answers []string
	ttl     int
}

// query asks server, within the query timeout and ctx; over TCP again when a UDP answer
// came back truncated.
func (d *DNS) query(ctx context.Context, server string, run *Run) (*dnsAnswer, error) {
	qctx, cancel := context.WithTimeout(ctx, d.qtimeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(d.name), d.qtype)
	m.RecursionDesired = d.recursion
	m.SetEdns0(dnsUDPSize, false)
	r, rtt, err := exchangeDNS(qctx, m, server, d.transport)
	if err == nil && r.Truncated && d.transport == "udp" {
		run.Transcript.Printf("%s: the answer was truncated; asking again over tcp", server)
		r, rtt, err = exchangeDNS(qctx, m, server, "tcp")
	}
	if err != nil {
		return nil, fmt.Errorf("%s did not answer %s %s: %w", server, d.typeName, d.name, err)
	}
	a := &dnsAnswer{msg: r, rtt: rtt, answers: []string{}}
	a.answers, a.ttl = answersOf(r, d.qtype, d.typeName)
	run.Transcript.Printf("%s: %s %s -> %s in %s, %d answer records: %s", server, d.typeName, d.name,
		dns.RcodeToString[r.Rcode], rtt.Round(time.Microsecond), len(r.Answer), Trim(strings.Join(a.answers, ", "), 300))
	return a, nil
}

// exchangeDNS sends m on a new connection that closes when ctx ends.
func exchangeDNS(ctx context.Context, m *dns.Msg, server, network string) (*dns.Msg, time.Duration, error) {
	c := &dns.Client{Net: network, UDPSize: dnsUDPSize}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	return c.ExchangeWithConnContext(ctx, m, conn)
}

// answersOf lists the answer records of the asked type as configs.DNSAnswer writes them
// (a CNAME chain before them is not an answer to an A query), and their lowest TTL.
func answersOf(r *dns.Msg, qtype uint16, typeName string) ([]string, int) {
	out := []string{}
	ttl := -1
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != qtype {
			continue
		}
		var s string
		switch v := rr.(type) {
		case *dns.A:
			s = v.A.String()
		case *dns.AAAA:
			s = v.AAAA.String()
		case *dns.CNAME:
			s = v.Target
		case *dns.NS:
			s = v.Ns
		case *dns.MX:
			s = fmt.Sprintf("%d %s", v.Preference, v.Mx)
		case *dns.SRV:
			s = fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, v.Target)
		case *dns.TXT:
			s = strings.Join(v.Txt, "")
		default:
			continue
		}
		if n, err := configs.DNSAnswer(typeName, s); err == nil {
			s = n
		}
		out = append(out, s)
		if t := int(rr.Header().Ttl); ttl < 0 || t < ttl {
			ttl = t
		}
	}
	return out, max(ttl, 0)
}

// missing lists the expected answers a server did not give.
func (d *DNS) missing(got []string) []string {
	var out []string
	for _, e := range d.expect {
		if !slices.Contains(got, e) {
			out = append(out, e)
		}
	}
	return out
}

// Probe implements Prober.
func (d *DNS) Probe(ctx context.Context, run *Run) error {
	if len(d.servers) > 0 {
		run.Unmeasured("propagation mode asks several servers: read servers, stale and propagation_ms", keys(dnsQueryVars)...)
		return d.propagate(ctx, run)
	}
	run.Unmeasured("only propagation mode (servers: [...]) measures it", keys(dnsPropagationVars)...)
	a, err := d.query(ctx, d.server, run)
	if err != nil {
		return err
	}
	run.Vars["rcode"] = dns.RcodeToString[a.msg.Rcode]
	run.Vars["answers"] = a.answers
	run.Vars["answer_count"] = len(a.msg.Answer)
	run.Vars["authority_count"] = len(a.msg.Ns)
	run.Vars["additional_count"] = len(a.msg.Extra)
	run.Vars["ttl"] = a.ttl
	run.Vars["lookup_ms"] = ms(a.rtt)
	run.Vars["authoritative"] = a.msg.Authoritative
	if miss := d.missing(a.answers); len(miss) > 0 {
		run.Failf("%s %s at %s lacks %s (answered %s: %s)", d.typeName, d.name, d.server, strings.Join(miss, ", "),
			dns.RcodeToString[a.msg.Rcode], orNone(a.answers))
	}
	return nil
}

// propagate asks every server that does not show the expected answers yet, every poll,
// until all do or the run's time is up.
func (d *DNS) propagate(ctx context.Context, run *Run) error {
	start := time.Now()
	type state struct {
		answers []string
		rcode   int
		err     error
		done    time.Duration // when it first showed every expected answer
		ok      bool
	}
	states := make(map[string]*state, len(d.servers))
	for _, s := range d.servers {
		states[s] = &state{}
	}
	for {
		var wg sync.WaitGroup
		for _, s := range d.servers {
			st := states[s]
			if st.ok {
				continue
			}
			wg.Go(func() {
				a, err := d.query(ctx, s, run)
				if err != nil {
					st.err = err
					return
				}
				st.answers, st.rcode, st.err = a.answers, a.msg.Rcode, nil
				if len(d.missing(a.answers)) == 0 {
					st.ok, st.done = true, time.Since(start)
				}
			})
		}
		wg.Wait()
		stale := 0
		for _, st := range states {
			if !st.ok {
				stale++
			}
		}
		if stale == 0 || !waitPoll(ctx, d.poll) {
			break
		}
	}
	servers := map[string][]string{}
	staleServers := []string{}
	var slowest time.Duration
	var problems []string
	answered := false
	for _, s := range d.servers {
		st := states[s]
		servers[s] = st.answers
		slowest = max(slowest, st.done)
		if st.ok {
			continue
		}
		staleServers = append(staleServers, s)
		if st.answers != nil {
			answered = true
			problems = append(problems, fmt.Sprintf("%s answered %s", s, rcodeAndAnswers(st.rcode, st.answers)))
		} else {
			problems = append(problems, st.err.Error())
		}
	}
	run.Vars["servers"] = servers
	run.Vars["stale"] = len(staleServers)
	run.Vars["stale_servers"] = staleServers
	if len(staleServers) == 0 {
		run.Vars["propagation_ms"] = ms(slowest)
		run.Transcript.Printf("every server showed %s after %s", strings.Join(d.expect, ", "), slowest.Round(time.Millisecond))
		return nil
	}
	run.Vars["propagation_ms"] = ms(time.Since(start))
	run.Explain("propagation_ms", "not every server showed the expected answers before the timeout")
	if !answered {
		return fmt.Errorf("could not measure propagation of %s %s: %s", d.typeName, d.name, strings.Join(problems, "; "))
	}
	run.Failf("%d of %d servers did not show %s for %s %s within %s: %s", len(staleServers), len(d.servers),
		strings.Join(d.expect, ", "), d.typeName, d.name, time.Since(start).Round(time.Millisecond), strings.Join(problems, "; "))
	return nil
}

// waitPoll waits d, or until ctx ends (false).
func waitPoll(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// rcodeAndAnswers is a server's answer for a reason: its records, with the rcode before them
// when it is not NOERROR (a SERVFAIL or a REFUSED is not "no records").
func rcodeAndAnswers(rcode int, answers []string) string {
	if rcode == dns.RcodeSuccess {
		return orNone(answers)
	}
	return dns.RcodeToString[rcode] + ": " + orNone(answers)
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "no records"
	}
	return Trim(strings.Join(list, ", "), 200)
}

func keys(m types.Map) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// DefaultAssert implements DefaultAsserter: a single query must answer NOERROR with
// records; propagation mode is judged by its expected answers alone.
func (d *DNS) DefaultAssert() []string {
	if len(d.servers) > 0 {
		return nil
	}
	return defaultDNSAssert
}

// dnsKind registers the dns kind (kinds.go).
type dnsKind struct{}

func (dnsKind) vars() types.Map { return dnsVars }

// Instrument implements Instrumented: blackbox_exporter's DNS series, and how long
// propagation took.
func (dnsKind) Instrument(in Instruments) *Recorder {
	f := promauto.With(in.Reg)
	gauge := func(name, help string) *prometheus.GaugeVec {
		return f.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"check", "location"})
	}
	shared := in.shared // probe_dns_lookup_time_seconds, which the http kind sets too
	counts := map[string]*prometheus.GaugeVec{
		"answer_count":     gauge("probe_dns_answer_rrs", "Records in the answer section of a dns check's last answer."),
		"authority_count":  gauge("probe_dns_authority_rrs", "Records in the authority section of a dns check's last answer."),
		"additional_count": gauge("probe_dns_additional_rrs", "Records in the additional section of a dns check's last answer."),
	}
	propagation := f.NewHistogramVec(prometheus.HistogramOpts{Name: "vigil_dns_propagation_seconds",
		Help:    "Time until every server of a dns check in propagation mode showed the expected answers.",
		Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120, 300}}, []string{"check"})
	all := vecs(counts["answer_count"], counts["authority_count"], counts["additional_count"])
	return &Recorder{Vecs: append(all, propagation), Observe: func(r *Result) {
		l := prometheus.Labels{"check": r.Check, "location": r.Location}
		if v, ok := r.Vars["lookup_ms"].(float64); ok {
			shared.update(r.Check, r.Location, func(row *gaugeRow) { row.put(shared.dnsLookup, v/1000) })
		}
		for k, g := range counts {
			if v, ok := r.Vars[k].(int); ok {
				g.With(l).Set(float64(v))
			}
		}
		if v, ok := r.Vars["propagation_ms"].(float64); ok && r.Vars["stale"] == 0 {
			propagation.WithLabelValues(r.Check).Observe(v / 1000)
		}
	}}
}

func (dnsKind) build(_ *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.DNSSpec)
	d := &DNS{server: s.Server, servers: s.Servers, name: s.Name, qtype: dns.StringToType[s.Type], typeName: s.Type,
		transport: s.Transport, recursion: *s.Recursion, poll: s.Poll, qtimeout: s.QueryTimeout}
	for _, e := range s.Expect {
		n, _ := configs.DNSAnswer(s.Type, e) // validated when the config loaded
		d.expect = append(d.expect, n)
	}
	return d
}
