package checks

import (
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/vigil-monitor/vigil/configs"
	"github.com/vigil-monitor/vigil/internal/text"
)

// A result leaves its run through seal: from then on it may be stored, shown on the status
// page and the API, logged and sent to notifiers, so it holds no credential and has a
// bounded size whatever the target answered.
const (
	// BodyExcerpt is how much of a text value a result keeps (the status page shows as much).
	BodyExcerpt = 2000
	// EvidenceMaxBytes caps the response body a failing run of a store_body check keeps.
	EvidenceMaxBytes = 256 << 10
	// evidenceName is the artifact that holds it.
	evidenceName = "response-body"
)

// seal redacts and bounds res, the last step of a run. Assertions have already judged the
// whole answer; what is kept is: the response body only when the check says store_body
// (an excerpt, and for a failing run the body itself up to EvidenceMaxBytes as an artifact,
// binary bodies as bytes, never as escaped text), every other text value cut to
// BodyExcerpt, and every string redacted with the config's secrets and what the run learned.
func (c *Check) seal(res *Result, t *Transcript) {
	red := t.Redactor()
	if s, ok := c.prober.(sealer); ok {
		s.seal(res, red)
	}
	res.Vars, _ = red.Excerpts(res.Vars, BodyExcerpt).(map[string]any)
	for i, reason := range res.Reasons {
		res.Reasons[i] = red.Excerpt(reason, BodyExcerpt)
	}
	res.Halt = red.Excerpt(res.Halt, BodyExcerpt)
	for _, a := range res.Artifacts {
		a.Data = red.Bytes(a.Data)
	}
}

// sealer is implemented by kinds that have a say in what their results keep, before the
// rest is redacted and cut: http keeps the response body only with store_body.
type sealer interface {
	seal(res *Result, red *configs.Redactor)
}

// keepBody applies store_body to the http variables body and json.
func keepBody(res *Result, store bool, red *configs.Redactor) {
	body, ok := res.Vars["body"].(string)
	if !ok {
		return
	}
	if !store {
		delete(res.Vars, "body")
		delete(res.Vars, "json")
		return
	}
	ctype := ""
	if h, ok := res.Vars["headers"].(map[string]string); ok {
		ctype = h["Content-Type"]
	}
	binary := isBinary(body)
	if res.Outcome != Pass && body != "" {
		data := body[:text.CutAt(body, EvidenceMaxBytes)]
		name, ct := evidenceName+".txt", ctype
		if binary {
			name = evidenceName + ".bin"
			data = body[:min(len(body), EvidenceMaxBytes)]
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		res.Artifacts = append(res.Artifacts, &Artifact{Name: name, ContentType: ct, Data: []byte(data)})
	}
	switch {
	case binary:
		kind := ""
		if mt, _, err := mime.ParseMediaType(ctype); err == nil {
			kind = " (" + mt + ")"
		}
		res.Vars["body"] = fmt.Sprintf("(%d bytes of binary data%s: not kept as text)", len(body), kind)
		delete(res.Vars, "json")
	case len(body) > BodyExcerpt:
		res.Vars["body"] = red.Excerpt(body, BodyExcerpt)
		delete(res.Vars, "json") // the excerpt is there to read; the whole answer was judged
	}
}

// isBinary: text is valid UTF-8 without NUL bytes; anything else is kept as bytes.
func isBinary(s string) bool { return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 }
