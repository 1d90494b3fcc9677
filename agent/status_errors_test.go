package agent

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/store"
)

const pageCSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

// getWith GETs path with an Accept header ("" sends none) and no credentials, as a
// browser following a link from Slack does.
func getWith(t *testing.T, base, path, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	messageRe = regexp.MustCompile(`(?s)<p id="message">(.*?)</p>`)
	suggestRe = regexp.MustCompile(`<a id="did-you-mean" href="([^"]*)">`)
)

// browserAccept is what Chromium sends for a page it navigates to.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"

// A link from a Slack thread or a PagerDuty incident to a page that cannot be shown (a
// deploy or run past the retention period, a mistyped check, a bad id, an unknown theme)
// is answered with a page in the status page's look: the same status, the status page's
// security headers, the message escaped whatever the URL held, a did-you-mean link to the
// nearest check, and a link back to the status page. A client asking for JSON gets the
// API's error instead, under the same status.
func TestPageErrorsArePagesWithAWayBack(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", namesConfig(tg.srv.URL))
	run := &store.RunRecord{Check: "home", Kind: "http", Started: time.Now(), Duration: time.Millisecond, Outcome: "fail", Attempts: 1}
	if err := h.a.store.SaveRuns(context.Background(), []*store.RunRecord{run}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 5000)
	for _, c := range []struct {
		name, path string
		status     int
		want       string // in the message, unescaped
		suggest    string // the did-you-mean link ("" none)
	}{
		{"mistyped check", "/checks/hom", 404, `unknown check "hom"; did you mean "home"?`, "/checks/home"},
		{"mistyped check with a range", "/checks/hmoe?range=7d", 404, `did you mean "home"?`, "/checks/home?range=7d"},
		{"mistyped check with a bad escape in the query", "/checks/hom?range=%zz&x=%3Cb%3E", 404, `unknown check "hom"`, "/checks/home?x=%3Cb%3E"},
		{"check named with a script", "/checks/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404, `unknown check "<script>alert(1)</script>"`, ""},
		{"check named with a quote and a slash", "/checks/a%2Fb%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", 404, `unknown check "a/b\"><img src=x onerror=alert(1)>"`, ""},
		{"check named in bad UTF-8", "/checks/%E2%28", 404, `unknown check "\xe2("`, ""},
		{"check with a very long name", "/checks/" + long, 404, `unknown check "xxxx`, ""},
		{"deploy past retention", "/deploys/d-20261101-web-v1", 404, `no such deploy "d-20261101-web-v1": it may be past the store's retention (7 days)`, ""},
		{"deploy named with a script", "/deploys/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404, `no such deploy "<script>alert(1)</script>"`, ""},
		{"deploy with a very long id", "/deploys/" + long, 404, `no such deploy "xxxx`, ""},
		{"run past retention", "/runs/123456789", 404, "no such run #123456789: it may be past the store's retention (7 days)", ""},
		{"run id not a number", "/runs/abc", 400, `run ids are numbers, not "abc"`, ""},
		{"run id too big", "/runs/99999999999999999999", 400, `run ids are numbers, not "99999999999999999999"`, ""},
		{"run id with a script", "/runs/%3Cscript%3E", 400, `run ids are numbers, not "<script>"`, ""},
		{"artifact of a bad run id", "/runs/abc/artifacts/screenshot.png", 400, `run ids are numbers, not "abc"`, ""},
		{"artifact of a run past retention", "/runs/123456789/artifacts/screenshot.png", 404, "no such run #123456789", ""},
		{"artifact not kept", fmt.Sprintf("/runs/%d/artifacts/%%3Cscript%%3E.png", run.ID), 404, fmt.Sprintf(`run #%d has no evidence named "<script>.png"`, run.ID), ""},
		{"unknown theme", "/theme/%3Cb%3Eneon", 404, `the theme is light, dark or auto, not "<b>neon"`, ""},
		{"no such page", "/favicon.ico", 404, `no page at "/favicon.ico": the status page is /`, ""},
		{"a section in the singular", "/check/home?range=7d", 404, `no page at "/check/home"`, "/checks/home?range=7d"},
		{"a deploy's page in the singular", "/deploy/d-1", 404, `no page at "/deploy/d-1"`, "/deploys/d-1"},
		{"no such page, with a script", "/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404, `no page at "/<script>alert(1)</script>"`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := getWith(t, h.url, c.path, browserAccept)
			hd := resp.Header
			if resp.StatusCode != c.status || hd.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %q: %s; want %d and a page", resp.StatusCode, hd.Get("Content-Type"), shortAnswer(body), c.status)
			}
			if hd.Get("Content-Security-Policy") != pageCSP || hd.Get("X-Content-Type-Options") != "nosniff" ||
				hd.Get("X-Frame-Options") != "DENY" || hd.Get("Referrer-Policy") != "no-referrer" || hd.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v; want the status page's security headers and no-store", hd)
			}
			m := messageRe.FindStringSubmatch(body)
			if m == nil || !strings.Contains(html.UnescapeString(m[1]), c.want) {
				t.Errorf("message %q; want it to say %q", m, c.want)
			}
			if !strings.Contains(body, `<a id="back" href="/">`) || !strings.Contains(body, "<title>"+strconv.Itoa(c.status)+" ") {
				t.Errorf("no link back to the status page, or no status in the title: %s", shortAnswer(body))
			}
			got := ""
			if s := suggestRe.FindStringSubmatch(body); s != nil {
				got = html.UnescapeString(s[1])
			}
			if got != c.suggest {
				t.Errorf("did-you-mean link %q; want %q", got, c.suggest)
			}
			// Whatever the URL held is text on the page, never markup, and a long one is
			// cut, not echoed (nor in the theme links).
			for _, bad := range []string{"<script", "<img", "<b>", strings.Repeat("x", 100)} {
				if strings.Contains(body, bad) {
					t.Errorf("the page holds %q as written", bad)
				}
			}
			if len(body) > 20000 {
				t.Errorf("an error page of %d bytes", len(body))
			}

			// The same request asking for JSON: the API's error shape, same status.
			resp, body = getWith(t, h.url, c.path, "application/json")
			var out apiError
			if err := json.Unmarshal([]byte(body), &out); err != nil || resp.StatusCode != c.status || out.Status != c.status ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(out.Error, c.want) {
				t.Errorf("asking for JSON: %d %q %s (%v); want %d {\"error\": ...%q...}", resp.StatusCode, resp.Header.Get("Content-Type"),
					shortAnswer(body), err, c.status, c.want)
			}
		})
	}
}

// Badges are read by <img> tags and image proxies: a badge that cannot be drawn is still
// a well-formed SVG badge saying what is wrong (the full reason with the nearest name on
// hover), under 200 as Shields.io's are (an image proxy shows a broken image for a 404),
// whatever the URL held; a client asking for JSON gets the API's error and its 404.
func TestABadgeThatCannotBeDrawnIsStillABadge(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", namesConfig(tg.srv.URL))
	for _, c := range []struct{ path, says, title string }{
		{"/badges/hom/health.svg", "unknown check", `hom: unknown check (unknown check "hom"; did you mean "home"?)`},
		{"/badges/hom/uptime.svg?label=API", "unknown check", `API: unknown check`},
		{"/badges/home/uptime.svg?window=2d", "unknown window", `window must be 1h, 24h or 7d, not "2d"`},
		{"/badges/home/latency.svg", "unknown badge", `the badge is health, uptime or response, not "latency"`},
		{"/badges/home/health.png", "unknown badge", "badges end in .svg"},
		{"/badges/%3Cscript%3Ealert(1)%3C%2Fscript%3E/health.svg", "unknown check", `<script>alert(1)</script>: unknown check`},
		{"/badges/" + strings.Repeat("x", 5000) + "/health.svg", "unknown check", "xxxxxxxxxx"},
	} {
		resp, body := getWith(t, h.url, c.path, "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml; charset=utf-8" {
			t.Errorf("%s: %d %q; want an SVG badge, 200", shortPath(c.path), resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		var svg struct {
			Width int      `xml:"width,attr"`
			Title string   `xml:"title"`
			Texts []string `xml:"g>text"`
		}
		if err := xml.Unmarshal([]byte(body), &svg); err != nil {
			t.Errorf("%s is not well-formed XML: %v: %s", shortPath(c.path), err, shortAnswer(body))
			continue
		}
		if len(svg.Texts) != 4 || svg.Texts[3] != c.says || !strings.Contains(svg.Title, c.title) {
			t.Errorf("%s: says %q, title %q; want %q, and %q on hover", shortPath(c.path), svg.Texts, svg.Title, c.says, c.title)
		}
		if svg.Width > 400 || strings.Contains(body, "<script") {
			t.Errorf("%s: a badge %d px wide, or holding the URL's markup: %s", shortPath(c.path), svg.Width, shortAnswer(body))
		}
		if resp.Header.Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", shortPath(c.path), resp.Header)
		}
		resp, body = getWith(t, h.url, c.path, "application/json")
		var out apiError
		if err := json.Unmarshal([]byte(body), &out); err != nil || resp.StatusCode != 404 || out.Status != 404 || !strings.Contains(svg.Title, out.Error) {
			t.Errorf("%s asking for JSON: %d %s", shortPath(c.path), resp.StatusCode, shortAnswer(body))
		}
	}
}

func shortPath(p string) string {
	if len(p) > 80 {
		return p[:80] + "..."
	}
	return p
}

// A deploy or run page the store cannot read now is the agent's failure: a 503 with
// Retry-After that says to reload, not "no such deploy" (which sent people looking for a
// deploy that was there).
func TestAPageTheStoreCannotReadIsNotANotFound(t *testing.T) {
	dir := t.TempDir()
	st := &refusingReads{Store: openSQLite(t, dir)}
	tg := newTarget(t)
	h := startAgentWith(t, dir, webConfig{url: tg.srv.URL, verify: "interval: 1h, count: 2"}.String(), Options{Store: st})
	status, out := h.request("POST", "/api/v1/deploys", `{"service":"web","version":"v2"}`)
	if status != http.StatusAccepted {
		t.Fatalf("register: %d %v", status, out)
	}
	id := fmt.Sprint(out["id"])
	st.mode.Store("fail")
	defer st.mode.Store("")
	for _, path := range []string{"/deploys/" + id, "/runs/1", "/runs/1/artifacts/screenshot.png"} {
		resp, body := getWith(t, h.url, path, browserAccept)
		m := messageRe.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || m == nil ||
			!strings.Contains(m[1], "reload the page in a few seconds") || strings.Contains(body, "connection refused") {
			t.Errorf("%s with the store refusing: %d, Retry-After %q, %s; want a 503 page saying to reload (and not the store's error)",
				path, resp.StatusCode, resp.Header.Get("Retry-After"), shortAnswer(body))
		}
	}
	st.mode.Store("")
	if resp, body := getWith(t, h.url, "/deploys/"+id, browserAccept); resp.StatusCode != 200 {
		t.Errorf("once the store answers: %d %s", resp.StatusCode, shortAnswer(body))
	}
}

// RunByID is refused as Deploy is (refused_reads_test.go).
func (s *refusingReads) RunByID(ctx context.Context, id int64) (*store.RunRecord, error) {
	if err := s.refused(ctx); err != nil {
		return nil, err
	}
	return s.Store.RunByID(ctx, id)
}

func TestWantsJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  false,
		"*/*":                               false,
		browserAccept:                       false,
		"application/json":                  true,
		"Application/JSON":                  true,
		"application/json; charset=utf-8":   true,
		"application/json, text/plain, */*": true,
		"text/html, application/json":       false,
		"application/json;q=0.5, text/html": false,
		"text/html;q=0.5, application/json": true,
		"application/json;q=0":              false,
		"application/json;q=bad":            false,
		"image/svg+xml,*/*;q=0.8":           false,
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		if got := wantsJSON(r); got != want {
			t.Errorf("Accept %q: JSON %v, want %v", accept, got, want)
		}
	}
}

func TestPastRetention(t *testing.T) {
	for d, want := range map[time.Duration]string{168 * time.Hour: "7 days", 24 * time.Hour: "1 day", 36 * time.Hour: "36h",
		90 * time.Minute: "1h30m", 2 * time.Hour: "2h"} {
		a := &Agent{}
		cfg := &configs.Config{}
		cfg.Store.Retention = d
		a.rt.Store(&Runtime{Config: cfg})
		if got := a.pastRetention(); got != "past the store's retention ("+want+")" {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}

// A path no page has is the status page's 404 only for GET and HEAD outside /api/: another
// method on a page's path stays a 405, an unknown API path the API's JSON 404, and with
// status_page_auth the 404 page asks for the token first (it says which pages exist).
func TestNoSuchPageKeepsMethodsAndAuth(t *testing.T) {
	tg := newTarget(t)
	h := startAgent(t, "", namesConfig(tg.srv.URL))
	for _, c := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{"GET", "/nope", 404, "text/html; charset=utf-8"},
		{"HEAD", "/nope", 404, "text/html; charset=utf-8"},
		{"POST", "/checks/home", 405, "text/plain; charset=utf-8"},
		{"DELETE", "/nope", 404, "text/plain; charset=utf-8"},
		{"GET", "/api/v1/nope", 404, "application/json"},
		{"GET", "/healthz", 200, "application/json"},
		{"GET", "/metrics", 200, ""},
	} {
		req, _ := http.NewRequest(c.method, h.url+c.path, nil)
		req.Header.Set("Accept", browserAccept)
		req.Header.Set("Authorization", "Bearer s3cret-token") // the API's; pages need none here
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status || c.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) {
			t.Errorf("%s %s: %d %q; want %d %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.status, c.ctype)
		}
	}

	guarded := startAgent(t, "", strings.Replace(namesConfig(tg.srv.URL), "agent: {api_token: s3cret-token}", "agent: {api_token: s3cret-token, status_page_auth: true}", 1))
	if resp, body := getWith(t, guarded.url, "/deploy/d-1", browserAccept); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "/deploys/") {
		t.Errorf("a path no page has, with status_page_auth and no token: %d %s; want 401 and nothing of the pages", resp.StatusCode, shortAnswer(body))
	}
}
