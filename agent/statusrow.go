package agent

import "net/url"

// The overview's check rows are written here rather than by the template: a page of a
// thousand checks has a thousand rows of some twenty values each, and html/template's
// reflective escaping of each value was a third of the page's time. Every value from the
// config or a run goes through appendHTML.

// appendHTML appends the row's markup, ending a line (status_parts.go relies on it).
func (row *rowView) appendHTML(b []byte) []byte {
	b = append(b, `<tr class="check" data-check="`...)
	b = appendHTML(b, row.Name)
	b = append(b, `" data-status="`...)
	b = appendHTML(b, row.State)
	b = append(b, `"><td class="name"><span class="dot `...)
	b = append(b, row.Class...)
	b = append(b, `" title="`...)
	b = appendHTML(b, row.State)
	b = append(b, `"></span><a href="/checks/`...)
	b = appendHTML(b, url.PathEscape(row.Name))
	b = append(b, `">`...)
	b = appendHTML(b, row.Name)
	b = append(b, `</a> <span class="muted small">`...)
	b = appendHTML(b, row.Kind)
	b = append(b, `</span>`...)
	var (
		labels  []kv
		st      *checkStats
		uptime  [3]uptimeCell // 1 h, 24 h, 7 d
		latency string
	)
	if row.figures != nil {
		labels = labelList(row.check.Config.Labels)
		st, uptime, latency = row.figures.of(row)
	}
	if len(row.Services) > 0 || len(labels) > 0 {
		b = append(b, `<br>`...)
		for _, s := range row.Services {
			b = append(b, `<span class="chip">`...)
			b = appendHTML(b, s)
			b = append(b, `</span>`...)
		}
		for _, l := range labels {
			b = append(b, `<span class="chip label">`...)
			b = appendHTML(b, l.Key)
			b = append(b, '=')
			b = appendHTML(b, l.Value)
			b = append(b, `</span>`...)
		}
	}
	b = append(b, `</td><td>`...)
	if st != nil {
		b = appendBars(b, st, row.figures.labels)
	}
	b = append(b, `</td>`...)
	for _, u := range uptime {
		b = append(b, `<td class="num up `...)
		b = append(b, u.Class...)
		if u.Title != "" {
			b = append(b, `" title="`...)
			b = appendHTML(b, u.Title)
		}
		b = append(b, `">`...)
		b = append(b, u.Text...)
		b = append(b, `</td>`...)
	}
	b = append(b, `<td class="num">`...)
	if latency != "" {
		b = append(b, latency...)
	} else {
		b = append(b, `<span class="muted">–</span>`...)
	}
	b = append(b, `</td><td class="num small">`...)
	if row.Last != "" {
		b = append(b, `<span class="`...)
		b = append(b, row.Class...)
		b = append(b, `">`...)
		b = appendHTML(b, row.State)
		b = append(b, `</span> `...)
		b = append(b, row.Last...)
		b = append(b, `<br><span class="muted" title="`...)
		b = append(b, row.LastAt.UTC().Format("2006-01-02 15:04:05Z")...)
		b = append(b, `">`...)
		b = append(b, ago(row.LastAt)...)
		b = append(b, `</span>`...)
	} else {
		b = append(b, `<span class="muted">not run yet</span>`...)
	}
	b = append(b, `</td><td class="note">`...)
	if row.Incident {
		b = append(b, `<span class="pill bad">incident open</span> `...)
	}
	if row.Muted != "" {
		b = append(b, `<span class="pill warn" title="`...)
		b = appendHTML(b, row.Muted)
		b = append(b, `">muted</span> `...)
	}
	b = appendHTML(b, row.Reason)
	b = append(b, "</td></tr>\n"...)
	return b // every value above is escaped or one of ours
}

// appendHTML appends s escaped for HTML text and quoted attribute values.
func appendHTML(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&#34;"
		case '\'':
			rep = "&#39;"
		case 0:
			rep = "\uFFFD"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, rep...)
		start = i + 1
	}
	return append(b, s[start:]...)
}
