package checks

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/expr-lang/expr/types"
	"github.com/tidwall/gjson"
	"github.com/vigil-monitor/vigil/configs"
)

// HTTPVars are the variables of one HTTP response, shared by http and script steps.
var HTTPVars = types.Map{
	"status":                types.Int,
	"headers":               types.TypeOf(map[string]string{}),
	"body":                  types.String,
	"json":                  types.Any,
	"url":                   types.String,
	"proto":                 types.String,
	"dns_ms":                types.Float64,
	"connect_ms":            types.Float64,
	"tls_ms":                types.Float64,
	"ttfb_ms":               types.Float64,
	"cert_expiry_days":      types.Float64,
	"cert_expiry_timestamp": types.Float64,
	"body_bytes":            types.Int,
	"content_length":        types.Int,
	"redirects":             types.Int,
	"body_truncated":        types.Bool,
	"conn_reused":           types.Bool,
	"cached":                types.Bool,
	"age_s":                 types.Int,
}

// defaultHTTPAssert is blackbox_exporter's default: any 2xx.
var defaultHTTPAssert = []string{"status >= 200 && status < 300"}

// HTTP is the http kind: one request, judged by assertions over the response.
type HTTP struct {
	req       *requestTemplate
	client    *HTTPClient
	storeBody bool
	served    *configs.ServedVersion
}

// httpKind registers the http kind (kinds.go).
type httpKind struct{}

func (httpKind) vars() types.Map { return HTTPVars }

func (httpKind) build(b *builder, c *configs.Check) Prober {
	s := c.Spec.(*configs.HTTPSpec)
	req := b.request(c.Path()+".request", &s.Request, []string{"Nonce"})
	if req == nil {
		return nil
	}
	return &HTTP{req: req, client: b.deps.HTTP, storeBody: s.StoreBody, served: s.ServedVersion}
}

// DefaultAssert implements DefaultAsserter.
func (h *HTTP) DefaultAssert() []string { return defaultHTTPAssert }

// seal implements sealer: the body is kept only with store_body.
func (h *HTTP) seal(res *Result, red *configs.Redactor) { keepBody(res, h.storeBody, red) }

// Probe implements Prober.
func (h *HTTP) Probe(ctx context.Context, run *Run) error {
	r, err := h.req.Render(h.req.nonceData())
	if err != nil {
		return err
	}
	ctx, done := h.client.perRun(ctx)
	defer done()
	if run.Deploy != nil {
		ctx = revalidating(ctx)
	}
	resp, err := h.client.Do(ctx, r, run.Transcript)
	if err != nil {
		return targetFault(err)
	}
	now := time.Now()
	SetHTTPVars(run, "", resp, now)
	leftTheSite(run, r.URL, resp.FinalURL)
	version, where := "", ""
	if h.served != nil {
		version, where = versionOf(h.served, resp), servedWhere(h.served)
	}
	return judgeAnswer(run, h.served != nil, version, where, cacheOf(resp.Header.Get), now)
}

// judgeAnswer decides whose an answer is in a deploy's verification: the version it names
// (served_version) when it names one, else the age a cache gave it. A cached answer that
// names the deploy's version is the new version's, whenever it was stored.
func judgeAnswer(run *Run, served bool, version, where string, c cacheInfo, now time.Time) error {
	if served {
		if err := judgeServed(run, version, where); err != nil || version != "" {
			return err
		}
	}
	return judgeCached(run, c, now)
}

// servedWhere says where sv reads the version, for the transcript.
func servedWhere(sv *configs.ServedVersion) string {
	if sv.Header != "" {
		return "header " + sv.Header
	}
	return "field " + sv.Field
}

// servedBy reads the version an answer names and, in a deploy's verification, makes an
// answer from another version inconclusive: the old version still serving (a rollout not
// done, a load balancer draining old pods) says nothing of the new one, and a verdict
// passed on it would be a false pass. An answer that names no version is judged: a load
// balancer's 502 names none, and it is what visitors get.
func servedBy(run *Run, sv *configs.ServedVersion, resp *Response) error {
	return judgeServed(run, versionOf(sv, resp), servedWhere(sv))
}

// versionOf is the version resp names where sv says; "" when it names none.
func versionOf(sv *configs.ServedVersion, resp *Response) string {
	if sv.Header != "" {
		return strings.TrimSpace(resp.Header.Get(sv.Header))
	}
	if r := gjson.GetBytes(resp.Body, sv.Field); r.Exists() && !r.IsObject() && !r.IsArray() {
		return strings.TrimSpace(r.String())
	}
	return ""
}

// judgeServed is servedBy's rule for the version got, read from where.
func judgeServed(run *Run, got, where string) error {
	if got == "" {
		run.Transcript.Printf("served version: the answer names none (%s): judged as it is", where)
		return nil
	}
	// The answer is the target's: a version is shown flattened and clipped, whatever it holds.
	shown := Trim(got, 100)
	d := run.Deploy
	if d == nil || d.Version == "" {
		run.Transcript.Printf("served version: %s (%s)", shown, where)
		return nil
	}
	// A deploy registered as v1.4.0 (its tag) of a binary that says 1.4.0+g3f2a1c is one
	// version (sameVersion): the transcript says when they were written apart.
	run.Transcript.Printf("served version: %s (%s)%s", shown, where, apartNote(got, d.Version))
	if !sameVersion(got, d.Version) {
		return NotServedf("answered by version %s, not %s (the deploy's): the new version does not serve this yet", shown, d.Version)
	}
	return nil
}

// SetHTTPVars records resp as variables. prefix names the variables' owner in
// explanations ("" for a whole check).
func SetHTTPVars(run *Run, prefix string, resp *Response, now time.Time) {
	v := run.Vars
	v["status"] = resp.Status
	v["headers"] = flattenHeaders(resp.Header)
	v["body"] = string(resp.Body)
	v["json"] = resp.JSON
	v["url"] = resp.FinalURL
	v["proto"] = resp.Proto
	v["dns_ms"] = ms(resp.Timings.DNS)
	v["connect_ms"] = ms(resp.Timings.Connect)
	v["tls_ms"] = ms(resp.Timings.TLS)
	v["ttfb_ms"] = ms(resp.Timings.TTFB)
	v["duration_ms"] = ms(resp.Timings.Total)
	v["body_bytes"] = int(resp.BodyBytes)
	v["body_truncated"] = resp.Truncated
	v["conn_reused"] = resp.Reused
	v["content_length"] = int(resp.ContentLength)
	v["redirects"] = resp.Redirects
	if resp.CertExpiry.IsZero() {
		v["cert_expiry_days"] = -1.0
		v["cert_expiry_timestamp"] = 0.0
		run.Explain(prefix+"cert_expiry_days", "no TLS certificate: the answer came over plain http")
	} else {
		v["cert_expiry_days"] = resp.CertExpiry.Sub(now).Hours() / 24
		v["cert_expiry_timestamp"] = float64(resp.CertExpiry.UnixMilli()) / 1000
	}
	if resp.Truncated {
		run.Explain(prefix+"body", "cut at the body size cap")
	}
	if why := noJSON(resp); why != "" {
		run.Explain(prefix+"json", why)
	}
	if resp.Reused {
		run.Explain(prefix+"connect_ms", "a kept-alive connection was reused")
	}
	setCacheVars(run, prefix, cacheOf(resp.Header.Get))
}

// noJSON says why an answer has no json, "" when it has.
func noJSON(resp *Response) string {
	switch {
	case resp.Truncated:
		return "not parsed: the body was cut at the size cap"
	case resp.JSON == nil && resp.JSONError != "":
		return "the body looks like JSON and does not parse: " + Trim(resp.JSONError, 200)
	case resp.JSON == nil:
		return "the body is not JSON"
	}
	return ""
}

func flattenHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// leftTheSite fails a run of a deploy's verification whose answer, after redirects, came
// from another site than the one asked, where the runs before the deploy ended on it: a
// deploy that lost its session or auth settings sends every visitor to an identity
// provider's login page, a 200 that passed any status assertion (a loopback app whose
// every page went 302 to another host's "Sign in" form passed "status >= 200 && status
// < 300" and "status == 200" alike). A check whose answers already left the site before
// the deploy (a page behind a login) is judged as ever, and so is one whose baseline
// ended elsewhere (its url changed by a reload).
func leftTheSite(run *Run, asked, final string) {
	if run.Deploy == nil || run.Baseline == nil {
		return
	}
	before, _ := run.Baseline["url"].(string)
	a, err1 := url.Parse(asked)
	f, err2 := url.Parse(final)
	b, err3 := url.Parse(before)
	if before == "" || err1 != nil || err2 != nil || err3 != nil || !site(a, b) || site(a, f) {
		return
	}
	run.Failf("redirected off the site: the answer came from %s, where the runs before the deploy ended on %s (a login page at an "+
		"identity provider or a maintenance host answers 200 to a visitor who wanted the page)", Trim(final, 200), Trim(before, 200))
}

// site: a and b are one site (one's host is the other's or a subdomain of it; http to https
// is the same site).
func site(a, b *url.URL) bool { return sameSite(a, b) || sameSite(b, a) }
