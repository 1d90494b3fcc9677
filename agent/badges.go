package agent

// Badges for READMEs and dashboards: a check's health, its uptime and its response time, as
// an SVG in the style of Shields.io's "flat" badges, and as a Shields.io endpoint
// (https://shields.io/badges/endpoint-badge) for those who want Shields to draw them. They
// read the uptime board and the last result: no query.

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"

	"github.com/vigil-monitor/vigil/checks"
	"github.com/vigil-monitor/vigil/internal/text"
)

// Shields.io's named colours, as hex.
const (
	badgeGreen       = "#4c1"
	badgeYellowGreen = "#a4a61d"
	badgeYellow      = "#dfb317"
	badgeOrange      = "#fe7d37"
	badgeRed         = "#e05d44"
	badgeBlue        = "#007ec6"
	badgeGrey        = "#9f9f9f"
)

var shieldsColor = map[string]string{badgeGreen: "brightgreen", badgeYellowGreen: "yellowgreen", badgeYellow: "yellow",
	badgeOrange: "orange", badgeRed: "red", badgeBlue: "blue", badgeGrey: "lightgrey"}

// badge is what a badge says; detail, when set, is said on hover (its SVG title): why it
// says "unknown check".
type badge struct{ label, message, color, detail string }

// badgeError is why a badge cannot be drawn: short, what the badge says instead (in grey),
// and msg, what is wrong with the URL and how to fix it.
type badgeError struct{ short, msg string }

// badgeWindows are the windows uptime and response time badges accept.
var badgeWindows = map[string]int{"1h": hourRing, "24h": dayRing, "7d": weekRing}

// checkBadge works out a check's badge for a metric (health, uptime, response) over a
// window, or why it cannot.
func (a *Agent) checkBadge(name, metric, window string) (badge, *badgeError) {
	if rt := a.Runtime(); rt.Checks[name] == nil {
		return badge{}, &badgeError{"unknown check", unknownCheck(rt, name)}
	}
	if window == "" {
		window = "24h"
	}
	ring, ok := badgeWindows[window]
	if !ok {
		return badge{}, &badgeError{"unknown window", fmt.Sprintf("window must be 1h, 24h or 7d, not %q", text.Ellipsis(window, 20))}
	}
	st, _ := a.board.stats(name, a.clock.Now())
	b := [3]runTotals{st.Hour, st.Day, st.Week}[ring]
	// While the store's history before the window's start is still being read, the figure
	// so far would be a guess: the badge says so instead. (When it could not be read, the
	// figure counts from the start of what was, as the status page says.)
	reading := st.Partial[ring] && st.Reading
	switch metric {
	case "health":
		bg := badge{label: name, message: "unknown", color: badgeGrey}
		if res := a.lastResult(name); res != nil {
			switch res.Outcome {
			case checks.Pass:
				bg.message, bg.color = "up", badgeGreen
			case checks.Fail:
				bg.message, bg.color = "down", badgeRed
			case checks.Error:
				bg.message, bg.color = "error", badgeOrange
			default:
				bg.message = "inconclusive"
			}
		}
		return bg, nil
	case "uptime":
		bg := badge{label: "uptime " + window, message: "no data", color: badgeGrey}
		if reading {
			bg.message = "reading history"
		} else if b.judged() > 0 {
			r := float64(b.runs[0]) / float64(b.judged()) * 100
			bg.message = fmtPercent(r)
			switch {
			case r >= 99.9:
				bg.color = badgeGreen
			case r >= 99:
				bg.color = badgeYellowGreen
			case r >= 95:
				bg.color = badgeYellow
			case r >= 90:
				bg.color = badgeOrange
			default:
				bg.color = badgeRed
			}
		}
		return bg, nil
	case "response":
		bg := badge{label: "response time " + window, message: "no data", color: badgeGrey}
		if reading {
			bg.message = "reading history"
		} else if n := b.total(); n > 0 {
			avg := b.avgMS()
			bg.message = fmtMS(avg)
			switch {
			case avg <= 300:
				bg.color = badgeGreen
			case avg <= 1000:
				bg.color = badgeYellow
			case avg <= 3000:
				bg.color = badgeOrange
			default:
				bg.color = badgeRed
			}
		}
		return bg, nil
	}
	return badge{}, &badgeError{"unknown badge", fmt.Sprintf("the badge is health, uptime or response, not %q", text.Ellipsis(metric, 40))}
}

// badgeSVG draws a badge. A badge that cannot be drawn (a check renamed, a mistyped URL in
// a README) is still a badge: grey, "unknown check", with the reason and the nearest name
// on hover, and it is answered 200, as Shields.io answers its own "not found" badges:
// READMEs show badges through an image proxy (GitHub's camo), which shows a broken image
// for an answer that is not a 2xx, whatever its body. A client asking for JSON (a script
// checking its badge URLs) gets the API's error and its 404.
func (a *Agent) badgeSVG(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	name := r.PathValue("name")
	var bg badge
	be := &badgeError{"unknown badge", "badges end in .svg (or use shields.json)"}
	if metric, ok := strings.CutSuffix(r.PathValue("badge"), ".svg"); ok {
		bg, be = a.checkBadge(name, metric, r.URL.Query().Get("window"))
	}
	if be != nil {
		if wantsJSON(r) {
			writeError(w, http.StatusNotFound, "%s", be.msg)
			return
		}
		bg = badge{label: text.Ellipsis(name, 40), message: be.short, color: badgeGrey, detail: be.msg}
	}
	if l := r.URL.Query().Get("label"); l != "" && len(l) <= 40 {
		bg.label = l
	}
	w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	// Image proxies (GitHub's camo) cache what they are not told to fetch again.
	w.Header().Set("Cache-Control", "no-cache, max-age=0")
	_, _ = w.Write(renderBadge(bg))
}

// shieldsEndpoint answers Shields.io's endpoint badge schema:
// https://img.shields.io/endpoint?url=<agent>/badges/<check>/shields.json%3Fmetric%3Duptime
func (a *Agent) shieldsEndpoint(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	metric := q.Get("metric")
	if metric == "" {
		metric = "health"
	}
	bg, be := a.checkBadge(r.PathValue("name"), metric, q.Get("window"))
	if be != nil {
		writeError(w, http.StatusNotFound, "%s", be.msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"schemaVersion": 1, "label": bg.label, "message": bg.message,
		"color": shieldsColor[bg.color], "cacheSeconds": 60})
}

// renderBadge draws a badge: the label on grey, the message on its colour, in Verdana 11px
// as Shields.io does, with widths from approximate character widths.
func renderBadge(b badge) []byte {
	lw, mw := textWidth(b.label)+10, textWidth(b.message)+10
	total := lw + mw
	esc := template.HTMLEscapeString
	title := b.label + ": " + b.message
	if b.detail != "" {
		title += " (" + b.detail + ")"
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s"><title>%s</title>`,
		total, esc(b.label), esc(b.message), esc(title))
	s.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>`)
	fmt.Fprintf(&s, `<clipPath id="r"><rect width="%d" height="20" rx="3" fill="#fff"/></clipPath>`, total)
	fmt.Fprintf(&s, `<g clip-path="url(#r)"><rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/><rect width="%d" height="20" fill="url(#s)"/></g>`,
		lw, lw, mw, b.color, total)
	s.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">`)
	for _, part := range []struct {
		x    int
		text string
	}{{lw / 2, b.label}, {lw + mw/2, b.message}} {
		fmt.Fprintf(&s, `<text x="%d" y="15" fill="#010101" fill-opacity=".3">%s</text><text x="%d" y="14">%s</text>`,
			part.x, esc(part.text), part.x, esc(part.text))
	}
	s.WriteString(`</g></svg>`)
	return []byte(s.String())
}

// textWidth approximates the width of s in Verdana 11px, rounded up to a pixel.
func textWidth(s string) int {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("iljI.,:;'|!", r):
			w += 3.2
		case strings.ContainsRune("frt() -", r):
			w += 4.6
		case strings.ContainsRune("mwMW%", r):
			w += 10.5
		case r >= 'A' && r <= 'Z':
			w += 7.6
		case r >= '0' && r <= '9':
			w += 7.0
		default:
			w += 6.4
		}
	}
	return int(math.Ceil(w))
}
