package alerting_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

// MayHaveArrived tells the outbox whether a rollback that ran out of attempts may have
// happened all the same: yes when an attempt was sent and not answered, however the later
// ones went; no when each was refused by an answer.
func TestWebhookSaysWhetherARequestMayHaveArrived(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	cfg := webhookConfig(rx.URL())
	cfg.Timeout = 300 * time.Millisecond
	n := newNotifier(t, cfg, nil)

	st := alerting.State{}
	rx.Fail(loopback.Fault{Status: 503})
	if err := n.Deliver(t.Context(), deployFailed(), st); err == nil || alerting.MayHaveArrived(err) {
		t.Errorf("a 503: %v, MayHaveArrived %v; want false", err, alerting.MayHaveArrived(err))
	}
	rx.Fail(loopback.Fault{AcceptThenHang: true})
	if err := n.Deliver(t.Context(), deployFailed(), st); err == nil || !alerting.MayHaveArrived(err) {
		t.Errorf("sent and not answered: %v, MayHaveArrived %v; want true", err, alerting.MayHaveArrived(err))
	}
	rx.Fail(loopback.Fault{Status: 502})
	if err := n.Deliver(t.Context(), deployFailed(), st); err == nil || !alerting.MayHaveArrived(err) {
		t.Errorf("a 502 after an attempt that was not answered: %v, MayHaveArrived %v; want true", err, alerting.MayHaveArrived(err))
	}
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatal(err)
	}
	rx.Down() // connection refused: nothing left this machine
	err := n.Deliver(t.Context(), deployFailed(), alerting.State{})
	if err == nil || alerting.Permanent(err) || alerting.MayHaveArrived(err) || !strings.Contains(err.Error(), "not sent") {
		t.Errorf("receiver down: %v (MayHaveArrived %v); want a retryable error saying it was not sent", err, alerting.MayHaveArrived(err))
	}
}

// A webhook host whose name does not resolve for a while (a DNS record not yet there, a
// resolver failing) is retried, says the request was not sent (so a rollback that runs out
// of attempts so is reported as not done, not as one that may have acted), and is
// delivered once the name resolves. The names are answered by a loopback DNS server: no
// query leaves the machine.
func TestAWebhookWhoseNameDoesNotResolveYet(t *testing.T) {
	t.Parallel()
	rx := loopback.NewWebhook(t)
	var resolves atomic.Bool
	dnsAddr := serveDNS(t, func(q dns.Question) (dns.RR, int) {
		if !resolves.Load() || q.Qtype != dns.TypeA {
			return nil, dns.RcodeNameError
		}
		return &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)}, dns.RcodeSuccess
	})
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, dnsAddr)
	}}
	_, port, _ := net.SplitHostPort(rx.Addr())
	cfg := webhookConfig("http://rollback.vigil.invalid:" + port + "/hook")
	cfg.Action = alerting.ActionRollback
	n, err := alerting.New(cfg, alerting.Options{UserAgent: "vigil-test",
		Transport: &http.Transport{DialContext: (&net.Dialer{Resolver: resolver}).DialContext}})
	if err != nil {
		t.Fatal(err)
	}
	st := alerting.State{}
	err = n.Deliver(t.Context(), deployFailed(), st)
	if err == nil || alerting.Permanent(err) || alerting.MayHaveArrived(err) || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("an unresolvable name: %v (permanent %v, MayHaveArrived %v); want retryable, not sent", err,
			alerting.Permanent(err), alerting.MayHaveArrived(err))
	}
	resolves.Store(true)
	if err := n.Deliver(t.Context(), deployFailed(), st); err != nil {
		t.Fatalf("the name resolves now: %v", err)
	}
	if rx.Count("d-42:deploy_failed") != 1 || rx.AllAttempts() != 1 {
		t.Errorf("accepted %d of %d attempts; want the one", rx.Count("d-42:deploy_failed"), rx.AllAttempts())
	}
}

// serveDNS answers DNS on a loopback UDP port with answer's record or rcode.
func serveDNS(t *testing.T, answer func(dns.Question) (dns.RR, int)) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, rcode := answer(r.Question[0])
		m.Rcode = rcode
		if rr != nil {
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// An https URL pointed at a port that speaks plain HTTP (a receiver on an internal network,
// the scheme written by habit) is a configuration error: refused at once, saying so, and
// not sent; and so is a receiver whose certificate is not trusted here, on Slack and
// PagerDuty as on a webhook. (Both were "no answer", retried for max_attempts, minutes,
// before anyone heard: the libraries' wrapping hid the cause.)
func TestAnHTTPSURLOnAPlainHTTPPortIsPermanent(t *testing.T) {
	t.Parallel()
	tls := func(raw string) string { return strings.Replace(raw, "http://", "https://", 1) }
	hook := webhookConfig(tls(loopback.NewWebhook(t).URL()))
	hook.Action = alerting.ActionRollback
	for _, cfg := range []*configs.Notifier{hook, slackConfig(tls(loopback.NewSlack(t).APIURL())),
		pagerDutyConfig(tls(loopback.NewPagerDuty(t).URL()))} {
		err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
		if !alerting.Permanent(err) || alerting.MayHaveArrived(err) || !strings.Contains(err.Error(), "does not speak TLS") {
			t.Errorf("%s: %v (permanent %v); want a permanent error saying the port does not speak TLS", cfg.Type, err, alerting.Permanent(err))
		}
	}
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(untrusted.Close)
	for _, cfg := range []*configs.Notifier{slackConfig(untrusted.URL + "/api/"), pagerDutyConfig(untrusted.URL + "/v2/enqueue")} {
		err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
		if !alerting.Permanent(err) || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
			t.Errorf("%s, an untrusted certificate: %v (permanent %v); want a permanent error saying what to do", cfg.Type, err, alerting.Permanent(err))
		}
	}
}
