package alerting_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigil-monitor/vigil/alerting"
	"github.com/vigil-monitor/vigil/alerting/loopback"
	"github.com/vigil-monitor/vigil/configs"
)

// No notifier follows a redirect (the README's Alertmanager and WEBHOOKS.md): a receiver
// behind one (an http-to-https hop, a moved endpoint) is a dead letter at once saying where
// it points, and nothing (no body, no token, no signature) reaches the other host.
func TestNoNotifierFollowsARedirect(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	t.Cleanup(other.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(redirect.Close)
	via := func(raw string) string { // raw with the redirecting server's host
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = strings.TrimPrefix(redirect.URL, "http://")
		return u.String()
	}
	slack := slackConfig(via(loopback.NewSlack(t).APIURL()))
	pd := pagerDutyConfig(via(loopback.NewPagerDuty(t).URL()))
	hook := webhookConfig(via(loopback.NewWebhook(t).URL()))
	teams := teamsConfig(loopback.NewTeams(t))
	teams.URL = via(teams.URL)
	discord := discordConfig(loopback.NewDiscord(t))
	discord.URL = via(discord.URL)
	genie := opsgenieConfig(loopback.NewOpsgenie(t))
	genie.APIURL = via(genie.APIURL)
	for _, cfg := range []*configs.Notifier{slack, pd, hook, teams, discord, genie} {
		err := newNotifier(t, cfg, nil).Deliver(t.Context(), deployFailed(), alerting.State{})
		var ae *alerting.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusMovedPermanently || !ae.Permanent || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("%s behind a redirect: %v; want a permanent 301 saying redirects are not followed", cfg.Type, err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests followed a redirect to the other host", n)
	}
}
