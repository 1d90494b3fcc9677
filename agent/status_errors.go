package agent

// Errors on the pages people open from a Slack thread, a PagerDuty incident or a README:
// a deploy or run past the retention period, a mistyped check, a link from another agent.
// A browser gets a small page in the status page's own look and theme (the status code
// kept, the text escaped, a link to the nearest name when one was mistyped and one back to
// the status page); a client that asks for JSON gets the API's error,
// {"error": "...", "status": 404}. Badges answer an image (badges.go).

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

type errorPageView struct {
	pageMeta
	Status  int
	Heading string // the status's text: "Not Found"
	Message string
	Suggest *option // the nearest name's page, when a name was mistyped
}

// pageError answers a page's error with status and msg, and suggest (nil: none) as the
// did-you-mean link.
func (a *Agent) pageError(w http.ResponseWriter, r *http.Request, status int, msg string, suggest *option) {
	w.Header().Add("Vary", "Accept")
	if wantsJSON(r) {
		writeError(w, status, "%s", msg)
		return
	}
	// The answer may be a page of its own tomorrow (a deploy registered, a check added).
	w.Header().Set("Cache-Control", "no-store")
	heading := http.StatusText(status)
	m := a.meta(r, fmt.Sprintf("%d %s", status, heading), false)
	m.Back = "/" // the theme links come back to the status page, not to the error
	a.renderStatus(w, status, "error.html", &errorPageView{pageMeta: m, Status: status, Heading: heading,
		Message: text.Ellipsis(msg, 400), Suggest: suggest}, time.Now())
}

// storeFailedPage answers a page the store could not read now (what is "deploy" or "run",
// id the one asked for): the agent's failure, not the reader's, so a 503 with Retry-After
// as the API answers, never "no such deploy". The store's error is logged, not shown: the
// page may be open to anyone (status_page_auth).
func (a *Agent) storeFailedPage(w http.ResponseWriter, r *http.Request, what, id string, err error) {
	a.log.Error("reading a status page from the store failed", what, text.Ellipsis(id, 80), "error", err)
	w.Header().Set("Retry-After", "5")
	a.pageError(w, r, http.StatusServiceUnavailable, fmt.Sprintf("the store did not answer reading %s %q: reload the page in a few seconds (the agent's log says why)",
		what, text.Ellipsis(id, 80)), nil)
}

// pastRetention is "past the store's retention (7 days)": why a link from an old Slack
// thread finds nothing.
func (a *Agent) pastRetention() string {
	d := a.Runtime().Config.Store.Retention
	span := d.String() // "36h0m0s" is said "36h", "1h30m0s" "1h30m"
	for _, zero := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(span, zero) {
			span = span[:len(span)-2]
		}
	}
	if day := 24 * time.Hour; d == day {
		span = "1 day"
	} else if d > day && d%day == 0 {
		span = fmt.Sprintf("%d days", d/day)
	}
	return "past the store's retention (" + span + ")"
}

// unknownCheckPage answers a check the config does not have: 404, in the API's words
// (unknownCheck), with a link to the nearest check's page on the same path after it.
func (a *Agent) unknownCheckPage(w http.ResponseWriter, r *http.Request, rt *Runtime, name string) {
	var suggest *option
	if near := configs.Nearest(name, checkNames(rt)); near != "" {
		// The query (?range=7d) re-encoded: a malformed one is not passed on as written.
		suggest = &option{Label: near, URL: withQuery("/checks/"+url.PathEscape(near), r.URL.Query())}
	}
	a.pageError(w, r, http.StatusNotFound, unknownCheck(rt, name), suggest)
}

// wantsJSON says whether the client prefers JSON to HTML: application/json named with a
// higher q than text/html (or without it), as `curl -H 'Accept: application/json'`, axios
// and the API's clients send. A browser names text/html first, an <img> image types and
// */*, and a bare curl */*: they get the page (or the badge).
func wantsJSON(r *http.Request) bool {
	jsonQ, htmlQ := 0.0, 0.0
	for _, line := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(line, ",") {
			mt, params, err := mime.ParseMediaType(part) // lower-cases the type
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			switch mt {
			case "application/json":
				jsonQ = max(jsonQ, q)
			case "text/html", "application/xhtml+xml":
				htmlQ = max(htmlQ, q)
			}
		}
	}
	return jsonQ > htmlQ
}

// pageSections are the first segments of the pages' paths, for noSuchPage's nearest one.
var pageSections = []string{"checks", "deploys", "runs", "badges", "theme", "api", "metrics", "healthz", "readyz"}

// noSuchPage answers a GET of a path no page has (a link typed by hand, /check/web for
// /checks/web, an old bookmark): 404 as a page with the way back, and the path with its
// first segment corrected when one is near.
func (a *Agent) noSuchPage(w http.ResponseWriter, r *http.Request) {
	var suggest *option
	first, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if near := configs.Nearest(first, pageSections); near != "" && near != first {
		u := "/" + near
		if rest != "" {
			u += "/" + rest
		}
		suggest = &option{Label: u, URL: (&url.URL{Path: u, RawQuery: r.URL.Query().Encode()}).String()}
	}
	a.pageError(w, r, http.StatusNotFound, fmt.Sprintf("no page at %q: the status page is /, a check's /checks/{name}, a deploy's /deploys/{id}, a run's /runs/{id}",
		text.Ellipsis(r.URL.Path, 120)), suggest)
}
