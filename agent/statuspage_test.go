package agent_test

// The status page as people see it: an agent with a week of history and real deploys of
// the demo shop (a good one, a broken one a real browser catches, its rollback), loaded in
// a real Chromium; the tests assert on the DOM, and keep screenshots (light and dark) of
// the overview, a check, a deploy and a run as test artifacts (-artifacts DIR). With
// VIGIL_UPDATE_SCREENSHOTS=1 (or -update) they also rewrite docs/screenshots/, which the
// README shows.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestStatusPagesInChromium(t *testing.T) {
	path := chromium(t)
	st := startStatusStage(t)
	tb := newTab(t, path)

	for _, dark := range []bool{false, true} {
		theme := "light"
		if dark {
			theme = "dark"
		}
		tb.theme(dark)

		// The overview.
		tb.open(st.url + "/")
		if l := background(tb); (l < 0.5) != dark {
			t.Errorf("%s theme: the page's background has luminance %.2f", theme, l)
		}
		if n := eval[int](tb, `document.querySelectorAll('script').length`); n != 0 {
			t.Errorf("the page has %d scripts; it is server-rendered under a CSP without scripts", n)
		}
		if got := eval[[]string](tb, `[...document.querySelectorAll('section.group')].map(s => s.dataset.group)`); strings.Join(got, ",") != "search,shop,no service" {
			t.Errorf("groups by service: %v", got)
		}
		rows := eval[int](tb, `document.querySelectorAll('tr.check').length`)
		if rows != 6 {
			t.Errorf("%d check rows; want the 6 checks, each once", rows)
		}
		bars := eval[[]int](tb, `[...document.querySelectorAll('tr.check span.bars')].map(s => s.querySelectorAll('i').length)`)
		if len(bars) != 6 || bars[0] != 48 {
			t.Errorf("uptime bars per check: %v; want 48 half-hour bars each", bars)
		}
		// login failed for an hour two days ago: the 7-day uptime says so, the 24-hour one does not.
		login := eval[[]string](tb, `[...document.querySelector('tr[data-check=login]').querySelectorAll('td.up')].map(td => td.textContent)`)
		if len(login) != 3 || login[1] != "100%" || !regexp.MustCompile(`^99\.\d\d%$`).MatchString(login[2]) {
			t.Errorf("login's uptime over 1 h, 24 h, 7 d: %v", login)
		}
		// The week is read: no figure is marked as counted in part, and no banner says so.
		if n := eval[int](tb, `document.querySelectorAll('td.up.partial, .banner.history, .bars i.part').length`); n != 0 {
			t.Errorf("%d uptime cells or banners say the history is still being read after it was", n)
		}
		// search-api had errors five hours ago: a bar of its last day shows them, with details on hover.
		hover := eval[[]string](tb, `[...document.querySelectorAll('tr[data-check=search-api] span.bars i')].filter(r => r.title.includes('error')).map(r => r.getAttribute('class') + ' ' + r.title)`)
		if len(hover) == 0 || !slicesHave(hover, func(s string) bool { return strings.HasPrefix(s, "b-e ") }) {
			t.Errorf("search-api's bars should show its errors, in their colour, with details on hover: %q", hover)
		}
		if got := eval[string](tb, `document.querySelector('tr[data-check=login] .chip.label').textContent`); got != "team=shop" {
			t.Errorf("login's first label chip: %q", got)
		}
		banners := eval[string](tb, `[...document.querySelectorAll('.banner')].map(b => b.textContent).join('|')`)
		if !strings.Contains(banners, "Maintenance report-migration") || !strings.Contains(banners, "service search until") || !strings.Contains(banners, "alice") {
			t.Errorf("banners: %q", banners)
		}
		if muted := eval[string](tb, `document.querySelector('tr[data-check=legacy-report] td.note').textContent`); !strings.Contains(muted, "muted") {
			t.Errorf("legacy-report is in a maintenance window; its note says %q", muted)
		}
		card := fmt.Sprintf(`document.querySelector('.deploy-card[data-deploy=%q]')`, st.failed)
		if got := eval[string](tb, card+`.textContent`); !strings.Contains(got, "failed") || !strings.Contains(got, "after it was registered") ||
			!strings.Contains(got, "home-page") || !strings.Contains(got, "CI run") || !strings.Contains(got, "↩") {
			t.Errorf("the broken deploy's card: %q", got)
		}
		// The screenshot loads lazily: bring it into view, then wait for it.
		eval[bool](tb, `(`+card+`.querySelector('img').scrollIntoView(), true)`)
		eventually(t, 10*time.Second, "the broken deploy's card's screenshot", func() bool {
			return eval[int](tb, card+`.querySelector('img').naturalWidth`) > 0
		})
		if got := eval[int](tb, `document.querySelectorAll('.service[data-service=shop] .deploy-card').length`); got != 5 {
			t.Errorf("shop's deploy timeline has %d deploys; want the 3 from history and the 2 of this test", got)
		}
		events := eval[string](tb, `document.querySelector('ol.events').textContent`)
		for _, want := range []string{"deploy of shop failed", "rollback of shop", "silence", "search-api recovered"} {
			if !strings.Contains(events, want) {
				t.Errorf("the events timeline lacks %q: %s", want, events)
			}
		}
		tb.shot("status-" + theme)

		// A check, with its latency chart and the deploys on it.
		tb.open(st.url + "/checks/home-page?range=7d")
		ticks := eval[[]string](tb, `[...document.querySelectorAll('svg.chart text.tick')].map(t => t.textContent)`)
		if !slicesHave(ticks, func(s string) bool { return strings.HasSuffix(s, " ms") || strings.HasSuffix(s, " s") }) ||
			!slicesHave(ticks, func(s string) bool { return regexp.MustCompile(`^[A-Z][a-z]{2} [A-Z][a-z]{2} \d+$`).MatchString(s) }) {
			t.Errorf("the chart's axes: %v; want values with units and days", ticks)
		}
		if n := eval[int](tb, `document.querySelectorAll('svg.chart g.deploy').length`); n != 5 {
			t.Errorf("the 7-day chart draws %d deploys; want 5", n)
		}
		if n := eval[int](tb, `document.querySelectorAll('svg.chart circle.dot').length`); n < 2 {
			t.Errorf("the chart shows %d failed runs; want the history's and the broken deploy's", n)
		}
		tb.shot("check-" + theme)

		// The broken deploy: its verdict, time to verdict, tally, links, screenshot and rollback.
		tb.open(st.url + "/deploys/" + st.failed)
		if got := eval[string](tb, `document.querySelector('#verdict').textContent`); got != "failed" {
			t.Errorf("verdict: %q", got)
		}
		if got := eval[string](tb, `document.querySelector('#took').textContent`); !regexp.MustCompile(`^failed [0-9.]+ (ms|s) after it was registered$`).MatchString(got) {
			t.Errorf("time to verdict: %q", got)
		}
		if got := eval[string](tb, `document.querySelector('#passed').textContent`); !regexp.MustCompile(`^[0-3] of 4 checks passed$`).MatchString(got) {
			t.Errorf("tally: %q", got)
		}
		if w := eval[int](tb, `document.querySelector('img.shot').naturalWidth`); w < 100 {
			t.Errorf("the failure screenshot is %d px wide", w)
		}
		if got := eval[string](tb, `document.body.textContent`); !strings.Contains(got, "diff") || !strings.Contains(got, "rollback of shop") {
			t.Errorf("the deploy page lacks its links or its rollback")
		}
		tb.shot("deploy-" + theme)

		// The failing run: its reason and its evidence.
		tb.open(fmt.Sprintf("%s/runs/%d", st.url, st.failedRn))
		if got := eval[string](tb, `document.querySelector('#outcome').textContent`); got != "fail" {
			t.Errorf("run outcome: %q", got)
		}
		if got := eval[string](tb, `document.body.textContent`); !strings.Contains(got, "formatPrice") {
			t.Error("the run page does not quote the exception")
		}
		tb.shot("run-" + theme)
	}

	// Search: a label, then a word; group by a label; collapse a group and keep it
	// collapsed across the auto-refresh (the state is in the URL).
	tb.theme(false)
	tb.open(st.url + "/?q=team%3Dshop")
	if got := eval[[]string](tb, `[...document.querySelectorAll('tr.check')].map(r => r.dataset.check)`); strings.Join(got, ",") != "health,login,checkout,home-page" {
		t.Errorf("search team=shop: %v", got)
	}
	tb.open(st.url + "/?group=label%3Ateam")
	if got := eval[[]string](tb, `[...document.querySelectorAll('section.group')].map(s => s.dataset.group)`); strings.Join(got, ",") != "team=discovery,team=finance,team=shop" {
		t.Errorf("groups by label team: %v", got)
	}
	if err := chromedp.Do(tb.ctx, chromedp.Click(chromedp.CSS(`section.group[data-group="team=shop"] a.toggle`)), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the collapsed group", func() bool {
		return eval[bool](tb, `!!document.querySelector('section.group.closed[data-group="team=shop"]')`)
	})
	if n := eval[int](tb, `document.querySelectorAll('tr.check').length`); n != 2 {
		t.Errorf("with team=shop collapsed, %d rows show; want 2", n)
	}
	if u := eval[string](tb, `location.search`); !strings.Contains(u, "closed=") {
		t.Errorf("the collapsed group is not in the URL (%q): the auto-refresh would open it again", u)
	}

	// The toggle: dark on a light system, kept across pages, back to the system's.
	if got := eval[string](tb, `document.querySelector('meta[http-equiv=refresh]')?.content || ''`); got == "" {
		t.Error("the overview does not refresh itself")
	}
	for _, c := range []struct {
		link string
		dark bool
	}{{"dark", true}, {"auto", false}} {
		if err := chromedp.Do(tb.ctx, chromedp.Click(chromedp.CSS(`footer a[href^="/theme/`+c.link+`"]`)), chromedp.WaitReady(chromedp.CSS("footer"))); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the "+c.link+" theme", func() bool { dark, ok := backgroundDark(tb); return ok && dark == c.dark })
		tb.open(st.url + "/checks/login")
		if (background(tb) < 0.5) != c.dark {
			t.Errorf("the %s theme is not kept on the next page", c.link)
		}
	}
}

func slicesHave(list []string, f func(string) bool) bool {
	for _, s := range list {
		if f(s) {
			return true
		}
	}
	return false
}
