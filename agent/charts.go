package agent

// The status page's charts, drawn on the server as inline SVG: no script, nothing fetched
// from elsewhere, so the page keeps its strict Content-Security-Policy. Hover details are
// SVG <title> elements, which every browser shows as a tooltip.

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-monitor/vigil/internal/text"
	"github.com/vigil-monitor/vigil/store"
)

// barClass names how a bucket of runs looks: no runs, all passed, mostly passed with
// failures or errors (degraded), mostly failing, errors only (vigil could not measure),
// inconclusive only.
func barClass(b runTotals) string {
	judged := b.judged()
	switch {
	case b.total() == 0:
		return "n"
	case judged == 0:
		return "i"
	case b.runs[1] == 0 && b.runs[2] == 0:
		return "p"
	case b.runs[0] == 0 && b.runs[1] == 0:
		return "e"
	case 2*b.runs[0] >= judged:
		return "d"
	}
	return "f"
}

// appendBucket appends a bucket's hover text: its runs by outcome and their latency. It is
// written for speed: a page of a thousand checks has 48,000 of them.
func appendBucket(s []byte, b runTotals) []byte {
	n := b.total()
	if n == 0 {
		return append(s, "no runs"...)
	}
	s = strconv.AppendUint(s, uint64(n), 10)
	if n == 1 {
		s = append(s, " run"...)
	} else {
		s = append(s, " runs"...)
	}
	for i, word := range [...]string{" passed", " failed", " error", " inconclusive"} {
		if c := b.runs[i]; c > 0 {
			s = append(s, ", "...)
			s = strconv.AppendUint(s, uint64(c), 10)
			s = append(s, word...)
			if i == 2 && c > 1 {
				s = append(s, 's')
			}
		}
	}
	s = append(s, "; avg "...)
	s = appendMS(s, b.avgMS())
	s = append(s, ", max "...)
	return appendMS(s, float64(b.maxMS))
}

// barLabels are the bars' times, the same for every check of a page.
type barLabels [barsShown]string

func newBarLabels(start time.Time) *barLabels {
	var l barLabels
	for i := range l {
		from := start.Add(time.Duration(i) * barWidth).UTC()
		l[i] = from.Format("15:04") + "–" + from.Add(barWidth).Format("15:04") + "Z: "
	}
	return &l
}

// uptimeBars draws a day of half-hour bars, coloured by outcome, oldest on the left, each
// with its details on hover; a bar from before the board holds every run (st.From) is
// faded and says it counts in part. They are HTML, not SVG: a page of a thousand checks
// has 48,000 bars, and each costs a few bytes this way.
func uptimeBars(st *checkStats, labels *barLabels) template.HTML {
	return template.HTML(appendBars(make([]byte, 0, barsShown*96), st, labels)) // fixed classes, times and numbers only: nothing to escape
}

// appendBars appends uptimeBars' markup to b.
func appendBars(b []byte, st *checkStats, labels *barLabels) []byte {
	if labels == nil {
		labels = newBarLabels(st.Start)
	}
	b = append(b, `<span class="bars" role="img" aria-label="runs in the last 24 hours, in half-hour bars">`...)
	// the bars that start before st.From, when the board does not hold their runs yet
	part := 0
	if !st.From.IsZero() {
		part = min(barsShown, int((st.From.Sub(st.Start)+barWidth-1)/barWidth))
	}
	for i, bk := range st.Bars {
		b = append(b, `<i class="b-`...)
		b = append(b, barClass(bk)...)
		if i < part {
			b = append(b, ` part`...)
		}
		b = append(b, `" title="`...)
		b = append(b, labels[i]...)
		b = appendBucket(b, bk)
		if i < part {
			b = append(b, " (in part)"...)
		}
		b = append(b, `"></i>`...)
	}
	return append(b, `</span>`...)
}

// uptimeCells are a check's uptime over 1 h, 24 h and 7 d, each marked partial (and saying
// why) while the board does not hold its whole window.
func uptimeCells(st checkStats) [3]uptimeCell {
	var cells [3]uptimeCell
	for i, b := range []runTotals{st.Hour, st.Day, st.Week} {
		cells[i].Text, cells[i].Class = uptime(b)
		if st.Partial[i] {
			cells[i].Class += " partial"
			cells[i].Title = "counts " + historyNote(st)
		}
	}
	return cells
}

// historyNote says which runs a check's figures count while they count part of their
// windows, and why; "" when none does.
func historyNote(st checkStats) string {
	if st.Partial == [3]bool{} {
		return ""
	}
	from := st.From.Format("15:04:05Z")
	if st.Reading {
		return "the runs from " + from + " on: the store's history before is still being read"
	}
	return "the runs from " + from + " on: the store's history before could not be read"
}

// uptime is the share of judged runs that passed, as the page prints it ("99.95%"), and a
// class for its colour; "–" when nothing was judged.
func uptime(b runTotals) (text, class string) {
	j := b.judged()
	if j == 0 {
		return "–", "none"
	}
	r := float64(b.runs[0]) / float64(j) * 100
	switch {
	case r >= 99.9:
		class = "good"
	case r >= 99:
		class = "fair"
	default:
		class = "bad"
	}
	return fmtPercent(r), class
}

func fmtPercent(r float64) string {
	switch {
	case r == 100:
		return "100%"
	case r >= 99.99:
		return "99.99%" // never round a failure up to 100%
	case r >= 99:
		return strconv.FormatFloat(math.Floor(r*100)/100, 'f', 2, 64) + "%"
	default:
		return strconv.FormatFloat(math.Floor(r*10)/10, 'f', 1, 64) + "%"
	}
}

// fmtMS prints a duration given in milliseconds with a unit a person reads at a glance.
func fmtMS(ms float64) string { return string(appendMS(make([]byte, 0, 12), ms)) }

// appendMS appends fmtMS(ms) to b.
func appendMS(b []byte, ms float64) []byte {
	switch {
	case ms >= 10000:
		return append(strconv.AppendFloat(b, ms/1000, 'f', 0, 64), " s"...)
	case ms >= 1000:
		return append(strconv.AppendFloat(b, ms/1000, 'f', 1, 64), " s"...)
	case ms >= 10:
		return append(strconv.AppendFloat(b, ms, 'f', 0, 64), " ms"...)
	}
	return append(strconv.AppendFloat(b, ms, 'f', 1, 64), " ms"...)
}

func fmtDuration(d time.Duration) string { return fmtMS(float64(d.Microseconds()) / 1000) }

// latencyData is what a latency chart draws.
type latencyData struct {
	From, To time.Time
	Columns  int
	Cols     []store.LatencyColumn
	Failures []*store.RunBrief
	Deploys  []*store.DeployEntry
}

// Chart geometry (SVG user units; the chart scales to the page's width).
const (
	chartW, chartH             = 960, 284
	plotL, plotR, plotT, plotB = 64, 948, 36, 246
)

// latencyChart draws a check's response times over a range: the average of each column as
// a line, the fastest to slowest run as a band, runs that did not pass as dots (linking to
// them), and deploys as vertical lines labelled with their version (linking to them). The
// axes carry real times (UTC) and units.
func latencyChart(d latencyData) template.HTML {
	span := d.To.Sub(d.From)
	if span <= 0 || d.Columns <= 0 {
		return ""
	}
	colW := span / time.Duration(d.Columns)
	var top time.Duration
	for _, c := range d.Cols {
		top = max(top, c.Max)
	}
	for _, f := range d.Failures {
		top = max(top, f.Duration)
	}
	step, yMax := niceScale(top)
	x := func(t time.Time) float64 {
		return plotL + float64(t.Sub(d.From))/float64(span)*(plotR-plotL)
	}
	y := func(v time.Duration) float64 {
		return plotB - float64(v)/float64(yMax)*(plotB-plotT)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="response time, %s to %s UTC">`,
		chartW, chartH, d.From.UTC().Format("2006-01-02 15:04"), d.To.UTC().Format("2006-01-02 15:04"))
	// y axis: grid lines with their values
	for v := time.Duration(0); v <= yMax; v += step {
		yy := y(v)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/><text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`,
			plotL, plotR, yy, yy, plotL-6, yy+4, fmtDuration(v))
	}
	fmt.Fprintf(&b, `<text class="axis" transform="translate(14 %d) rotate(-90)" text-anchor="middle">response time</text>`, (plotT+plotB)/2)
	// x axis: ticks on round times
	tick, layout := timeTicks(span)
	for t := d.From.Truncate(tick).Add(tick); t.Before(d.To); t = t.Add(tick) {
		xx := x(t)
		label := t.UTC().Format(layout)
		fmt.Fprintf(&b, `<line class="grid" x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			xx, xx, plotT, plotB+4, xx, plotB+18, label)
	}
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d" text-anchor="end">time (UTC)</text>`, plotR, chartH-4)
	fmt.Fprintf(&b, `<line class="base" x1="%d" x2="%d" y1="%d" y2="%d"/>`, plotL, plotR, plotB, plotB)

	// the band (min to max) and the average line, broken where columns have no runs
	var band, line strings.Builder
	prev := -2
	var lower []string
	flush := func() {
		if len(lower) > 0 {
			for i := len(lower) - 1; i >= 0; i-- {
				band.WriteString(" L" + lower[i])
			}
			band.WriteString(" Z")
			lower = lower[:0]
		}
	}
	for _, c := range d.Cols {
		if c.Index < 0 || c.Index >= d.Columns || c.Runs == 0 {
			continue
		}
		cx := x(d.From.Add(colW*time.Duration(c.Index) + colW/2))
		avg := c.Sum / time.Duration(c.Runs)
		cmd := " L"
		if c.Index != prev+1 {
			flush()
			cmd = " M"
			fmt.Fprintf(&band, " M%.1f %.1f", cx, y(c.Max))
		} else {
			fmt.Fprintf(&band, " L%.1f %.1f", cx, y(c.Max))
		}
		lower = append(lower, fmt.Sprintf("%.1f %.1f", cx, y(c.Min)))
		fmt.Fprintf(&line, "%s%.1f %.1f", cmd, cx, y(avg))
		prev = c.Index
	}
	flush()
	if band.Len() > 0 {
		fmt.Fprintf(&b, `<path class="band" d="%s"/><path class="avg" d="%s"/>`, strings.TrimSpace(band.String()), strings.TrimSpace(line.String()))
	}
	// hover targets: one per column with runs
	for _, c := range d.Cols {
		if c.Index < 0 || c.Index >= d.Columns || c.Runs == 0 {
			continue
		}
		from := d.From.Add(colW * time.Duration(c.Index))
		fmt.Fprintf(&b, `<rect class="hover" x="%.1f" y="%d" width="%.1f" height="%d"><title>%s</title></rect>`,
			x(from), plotT, x(from.Add(colW))-x(from), plotB-plotT, template.HTMLEscapeString(describeColumn(from, from.Add(colW), c)))
	}
	// deploys, their labels on two rows so that deploys close in time stay readable
	lastX := [2]float64{-1e9, -1e9}
	for _, dp := range d.Deploys {
		if dp.CreatedAt.Before(d.From) || !dp.CreatedAt.Before(d.To) {
			continue
		}
		xx := x(dp.CreatedAt)
		label := text.Ellipsis(dp.Version, 16)
		row := 0
		if xx-lastX[0] < float64(len(label)*7+12) {
			row = 1
		}
		lastX[row] = xx
		fmt.Fprintf(&b, `<a href="/deploys/%s"><g class="deploy %s"><line x1="%.1f" x2="%.1f" y1="%d" y2="%d"/><text x="%.1f" y="%d" text-anchor="middle">%s</text><title>%s</title></g></a>`,
			template.HTMLEscapeString(dp.ID), statusClass(dp.Status), xx, xx, plotT-4-12*row, plotB, xx, plotT-8-12*row,
			template.HTMLEscapeString(label), template.HTMLEscapeString(describeDeploy(dp)))
	}
	// runs that did not pass
	for _, f := range d.Failures {
		if f.Started.Before(d.From) || !f.Started.Before(d.To) {
			continue
		}
		fmt.Fprintf(&b, `<a href="/runs/%d"><circle class="dot %s" cx="%.1f" cy="%.1f" r="4"><title>%s %s in %s: run #%d</title></circle></a>`,
			f.ID, statusClass(f.Outcome), x(f.Started), y(f.Duration), f.Started.UTC().Format("15:04:05Z"), f.Outcome, fmtDuration(f.Duration), f.ID)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers, fixed classes and escaped text only
}

func describeColumn(from, to time.Time, c store.LatencyColumn) string {
	s := fmt.Sprintf("%s–%sZ: %d %s", from.UTC().Format("Jan 2 15:04"), to.UTC().Format("15:04"), c.Runs, plural(c.Runs, "run"))
	if failed := c.Runs - c.Passed; failed > 0 {
		s += fmt.Sprintf(" (%d did not pass)", failed)
	}
	return s + fmt.Sprintf("; avg %s, fastest %s, slowest %s", fmtDuration(c.Sum/time.Duration(c.Runs)), fmtDuration(c.Min), fmtDuration(c.Max))
}

func describeDeploy(d *store.DeployEntry) string {
	s := fmt.Sprintf("deploy %s %s at %s: %s", d.Service, d.Version, d.CreatedAt.UTC().Format("15:04:05Z"), d.Status)
	if !d.DecidedAt.IsZero() && d.Status != "superseded" {
		s += " after " + fmtDuration(d.DecidedAt.Sub(d.CreatedAt))
	}
	return s
}

// niceScale picks a round step (1, 2 or 5 times a power of ten milliseconds) that cuts
// [0, top] in at most five, and the round top it reaches.
func niceScale(top time.Duration) (step, yMax time.Duration) {
	if top <= 0 {
		top = time.Millisecond
	}
	raw := float64(top) / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*pow >= raw {
			step = time.Duration(m * pow)
			break
		}
	}
	step = max(step, time.Microsecond)
	yMax = time.Duration(math.Ceil(float64(top)/float64(step))) * step
	return step, yMax
}

// timeTicks picks the spacing of the time axis's ticks for a range (6 to 12 of them) and
// how to print them.
func timeTicks(span time.Duration) (time.Duration, string) {
	for _, t := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour} {
		if span/t <= 12 {
			return t, "15:04"
		}
	}
	return 24 * time.Hour, "Mon Jan 2"
}

// statusClass is the CSS class of an outcome or a verdict.
func statusClass(s string) string {
	switch s {
	case "pass", "passed":
		return "ok"
	case "fail", "failed":
		return "bad"
	case "error":
		return "err"
	case "verifying":
		return "run"
	case "cancelled":
		return "muted" // called off: no verdict, and nothing wrong
	}
	return "warn" // inconclusive, superseded, not run yet
}
