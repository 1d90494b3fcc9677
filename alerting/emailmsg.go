package alerting

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-monitor/vigil/internal/text"
)

// maxMailScreenshots is how many failure screenshots a message attaches.
const maxMailScreenshots = 5

// mailMessage is a message ready for DATA.
type mailMessage struct {
	id, subject string
	data        []byte
}

// message renders the event as a MIME message: multipart/mixed of a multipart/alternative
// (text, HTML) and the screenshots. Boundaries derive from the idempotency key, so the same
// event is the same bytes on every attempt (and in the golden files).
func (m *Email) message(ev *Event, st State, now time.Time) mailMessage {
	key := keyOf(ev)
	sum := sha256.Sum256([]byte(key))
	tag := hex.EncodeToString(sum[:8])
	v := channelView(ev, st)
	var shots []mailShot
	for _, fc := range v.checks {
		if len(fc.Screenshot) > 0 && len(shots) < maxMailScreenshots {
			shots = append(shots, mailShot{check: fc.Name, file: fileName(fc.Name) + "-screenshot.png", data: fc.Screenshot})
		}
	}
	msg := mailMessage{id: "<" + messageIDPart(key) + "@" + m.domain() + ">", subject: "[vigil] " + v.title}
	if root := st[mailRoot]; root != "" && root != msg.id {
		msg.subject = "Re: " + strings.TrimPrefix(st[mailSubject], "Re: ")
	}
	var b bytes.Buffer
	header := func(k, val string) { fmt.Fprintf(&b, "%s: %s\r\n", k, val) }
	header("From", m.from.String())
	header("To", strings.Join(m.toHeader, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", headerText(text.Ellipsis(msg.subject, 200))))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("Message-ID", msg.id)
	if root := st[mailRoot]; root != "" && root != msg.id {
		header("In-Reply-To", root)
		header("References", root)
	}
	header("MIME-Version", "1.0")
	header("Auto-Submitted", "auto-generated") // RFC 3834: no vacation replies to vigil
	header("X-Vigil-Event", ev.Name)
	header("X-Vigil-Incident", mime.QEncoding.Encode("utf-8", headerText(text.Ellipsis(incidentOf(ev), 200))))

	mixed := multipart.NewWriter(&b)
	_ = mixed.SetBoundary("vigil-mixed-" + tag)
	header("Content-Type", `multipart/mixed; boundary="`+mixed.Boundary()+`"`)
	b.WriteString("\r\n")

	alt := &bytes.Buffer{}
	altW := multipart.NewWriter(alt)
	_ = altW.SetBoundary("vigil-alt-" + tag)
	plain := strings.ReplaceAll(RenderText(ev), screenshotNote, mailScreenshotNote(len(shots) > 0))
	writeQP(altW, "text/plain; charset=utf-8", strings.ReplaceAll(plain, "\n", "\r\n"))
	writeQP(altW, "text/html; charset=utf-8", mailHTML(ev, v, shots))
	_ = altW.Close()
	part, _ := mixed.CreatePart(textproto.MIMEHeader{"Content-Type": {`multipart/alternative; boundary="` + altW.Boundary() + `"`}})
	_, _ = part.Write(alt.Bytes())

	for _, s := range shots {
		part, _ := mixed.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {`image/png; name="` + s.file + `"`},
			"Content-Disposition":       {`attachment; filename="` + s.file + `"`},
			"Content-Transfer-Encoding": {"base64"},
		})
		enc := base64.StdEncoding.EncodeToString(s.data)
		for len(enc) > 76 {
			_, _ = part.Write([]byte(enc[:76] + "\r\n"))
			enc = enc[76:]
		}
		_, _ = part.Write([]byte(enc + "\r\n"))
	}
	_ = mixed.Close()
	msg.data = b.Bytes()
	return msg
}

type mailShot struct {
	check, file string
	data        []byte
}

func mailScreenshotNote(attached bool) string {
	if attached {
		return "screenshot attached"
	}
	return screenshotOnRunPage
}

// domain is the right-hand side of Message-IDs: the sender's domain.
func (m *Email) domain() string {
	if _, d, ok := strings.Cut(m.from.Address, "@"); ok && d != "" {
		return messageIDPart(d)
	}
	return "vigil.invalid"
}

// messageIDPart keeps what RFC 5322 allows in a Message-ID's parts (dot-atom text), and
// hashes what would be too long.
func messageIDPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('.')
		}
	}
	out := strings.Trim(b.String(), ".")
	for strings.Contains(out, "..") {
		out = strings.ReplaceAll(out, "..", ".")
	}
	if out == "" || len(out) > 120 {
		sum := sha256.Sum256([]byte(s))
		out = strings.Trim(text.Ellipsis(out, 60), ".…") + "." + hex.EncodeToString(sum[:8])
		out = strings.Trim(out, ".")
	}
	return out
}

// headerText keeps a header value on one line: control characters become spaces.
func headerText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func writeQP(w *multipart.Writer, contentType, body string) {
	part, _ := w.CreatePart(textproto.MIMEHeader{"Content-Type": {contentType}, "Content-Transfer-Encoding": {"quoted-printable"}})
	qp := quotedprintable.NewWriter(part)
	_, _ = qp.Write([]byte(body))
	_ = qp.Close()
}

// mailColours are the accent colours of the tones.
var mailColours = map[string]string{"bad": "#E01E5A", "warn": "#ECB22E", "good": "#2EB67D", "info": "#4A90D9"}

// mailPage is the HTML rendering; html/template escapes the text and refuses URLs that
// are not http(s) in links.
var mailPage = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#1d1c1d">
<div style="border-left:6px solid {{.Colour}};padding:6px 12px;margin-bottom:12px">
<h2 style="margin:0 0 4px 0">{{.Emoji}} {{.V.Title}}</h2>{{if ne .V.Status .V.Title}}
<strong>{{.V.Status}}</strong>{{end}}
</div>{{if .V.Facts}}
<table style="border-collapse:collapse;margin-bottom:12px">{{range .V.Facts}}
<tr><th align="left" style="padding:2px 12px 2px 0">{{.Name}}</th><td>{{if .Code}}<code>{{.Value}}</code>{{else}}{{.Value}}{{end}}</td></tr>{{end}}
</table>{{end}}{{if .V.Headline}}
<p style="color:#616061">{{.V.Headline}}</p>{{end}}{{if .V.Summary}}
<p>{{.V.Summary}}</p>{{end}}{{range .Checks}}
<div style="border-top:1px solid #ddd;padding:6px 0">
<strong>✗ {{.Name}}</strong>{{if .Tags}} · {{.Tags}}{{end}}{{if .Reason}}
<pre style="white-space:pre-wrap;background:#f6f6f6;padding:6px">{{.Reason}}</pre>{{end}}{{if .Baseline}}
<div style="color:#616061">{{.Baseline}}</div>{{end}}
{{if .RunURL}}<a href="{{.RunURL}}">Run</a>{{end}}{{if .RunbookURL}} · <a href="{{.RunbookURL}}">Runbook</a>{{end}}{{if .TraceURL}} · <a href="{{.TraceURL}}">trace {{.TraceID}}</a>{{else if .TraceID}} · trace <code>{{.TraceID}}</code>{{end}}{{if .Shot}} · screenshot attached ({{.Shot}}){{else if .OnRunPage}} · {{if .RunURL}}<a href="{{.RunURL}}">screenshot on the run page</a>{{else}}screenshot on the run page{{end}}{{end}}
</div>{{end}}{{if .More}}
<p>{{.More}}</p>{{end}}{{if .V.Halt}}
<p>🛑 <strong>Halt the rollout:</strong> {{.V.Halt}}</p>{{end}}{{range .V.Actions}}
<p><strong>{{.Notifier}}</strong>: {{.What}}</p>{{end}}
<p>{{if .V.Runbook}}<a href="{{.V.Runbook}}">Runbook</a> · {{end}}{{range .V.Links}}<a href="{{.URL}}">{{.Name}}</a> · {{end}}{{if .V.StatusURL}}<a href="{{.V.StatusURL}}">Status page</a>{{end}}</p>
<p style="color:#888;font-size:12px">Sent by vigil ({{.Event}}, incident {{.Incident}}).</p>
</body></html>
`))

type mailCheck struct {
	Name, Tags, Reason, Baseline, RunURL, RunbookURL, TraceID, TraceURL, Shot string
	OnRunPage                                                                 bool
}

func mailHTML(ev *Event, v view, shots []mailShot) string {
	type factT struct {
		Name, Value string
		Code        bool
	}
	type actionT struct{ Notifier, What string }
	type viewT struct {
		Title, Status, Headline, Summary, Halt, StatusURL, Runbook string
		Facts                                                      []factT
		Actions                                                    []actionT
		Links                                                      []Link
	}
	data := struct {
		V                                    viewT
		Colour, Emoji, More, Event, Incident string
		Checks                               []mailCheck
	}{V: viewT{Title: v.title, Status: v.status, Headline: v.headline, Summary: v.summary, Halt: v.halt, StatusURL: v.statusURL,
		Runbook: v.runbook, Links: v.links},
		Colour: mailColours[tone(ev)], Emoji: plainEmoji(v.emoji), Event: ev.Name, Incident: incidentOf(ev)}
	for _, f := range v.facts {
		data.V.Facts = append(data.V.Facts, factT{f.name, f.value, f.code})
	}
	for _, a := range v.actions {
		data.V.Actions = append(data.V.Actions, actionT{a.notifier, a.what})
	}
	for _, fc := range v.checks {
		c := mailCheck{Name: fc.Name, Tags: strings.Join(checkTags(fc), " · "), Reason: text.Ellipsis(fc.Summary, maxReason),
			Baseline: fc.Baseline, RunURL: fc.RunURL, RunbookURL: fc.RunbookURL, TraceID: text.Ellipsis(fc.TraceID, 64), TraceURL: fc.TraceURL, OnRunPage: len(fc.Screenshot) > 0}
		for _, s := range shots {
			if s.check == fc.Name {
				c.Shot = s.file
			}
		}
		data.Checks = append(data.Checks, c)
	}
	if v.more > 0 {
		data.More = moreChecks(v.more)
	}
	var b strings.Builder
	if err := mailPage.Execute(&b, data); err != nil {
		return "<p>" + template.HTMLEscapeString(err.Error()) + "</p>"
	}
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}
