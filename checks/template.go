package checks

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/vigil-monitor/vigil/configs"
)

// requestTemplate is a configured request whose URL, body and header values may use
// {{ .name }} templates, compiled once at load.
type requestTemplate struct {
	base    configs.Request
	url     *template.Template
	body    *template.Template
	headers map[string]*template.Template
	// templated: the url, body or a header has a template.
	templated bool
}

// compileRequest compiles the templates in r. path names r in errors.
func compileRequest(r *configs.Request) (*requestTemplate, error) {
	rt := &requestTemplate{base: *r, headers: map[string]*template.Template{}}
	var err error
	if rt.url, err = compileTemplate("url", r.URL); err != nil {
		return nil, err
	}
	if rt.body, err = compileTemplate("body", r.Body); err != nil {
		return nil, err
	}
	for k, v := range r.Headers {
		if rt.headers[k], err = compileTemplate("headers."+k, v); err != nil {
			return nil, err
		}
	}
	rt.templated = rt.url != nil || rt.body != nil
	for _, t := range rt.headers {
		rt.templated = rt.templated || t != nil
	}
	return rt, nil
}

// nonceData is the data of a request whose only variable is a fresh marker per send
// ({{ .Nonce }}): nil, and no marker made, when the request has no template.
func (rt *requestTemplate) nonceData() map[string]any {
	if !rt.templated {
		return nil
	}
	return map[string]any{"Nonce": newNonce()}
}

// templateError names which field of a request has a bad template.
type templateError struct {
	Field string
	Err   error
}

func (e *templateError) Error() string { return e.Err.Error() }

func compileTemplate(field, s string) (*template.Template, error) {
	if !strings.Contains(s, "{{") {
		return nil, nil
	}
	t, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return nil, &templateError{Field: field, Err: fmt.Errorf("bad template: %s", msg)}
	}
	return t, nil
}

// Fields lists the template variables the request reads, with the field that reads each.
func (rt *requestTemplate) Fields() map[string]string {
	out := map[string]string{}
	add := func(field string, t *template.Template) {
		if t == nil {
			return
		}
		for _, name := range templateFields(t) {
			if _, ok := out[name]; !ok {
				out[name] = field
			}
		}
	}
	add("url", rt.url)
	add("body", rt.body)
	for k, t := range rt.headers {
		add("headers."+k, t)
	}
	return out
}

// Render fills the templates from data.
func (rt *requestTemplate) Render(data map[string]any) (*Request, error) {
	r := &Request{Method: rt.base.Method, URL: rt.base.URL, Body: rt.base.Body, Header: http.Header{},
		Timeout: rt.base.Timeout, TLS: rt.base.TLS, Auth: rt.base.Auth, MaxBodyBytes: rt.base.MaxBodyBytes, Protocol: rt.base.Protocol,
		FollowRedirects: rt.base.FollowRedirects == nil || *rt.base.FollowRedirects}
	var err error
	if r.URL, err = execTemplate(rt.url, rt.base.URL, data); err != nil {
		return nil, err
	}
	if r.Body, err = execTemplate(rt.body, rt.base.Body, data); err != nil {
		return nil, err
	}
	for k, v := range rt.base.Headers {
		hv, err := execTemplate(rt.headers[k], v, data)
		if err != nil {
			return nil, err
		}
		r.Header.Set(k, hv)
	}
	if rt.url != nil {
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("the url template rendered %q, which is not an absolute http(s) URL", r.URL)
		}
	}
	return r, nil
}

func execTemplate(t *template.Template, raw string, data map[string]any) (string, error) {
	if t == nil {
		return raw, nil
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", t.Name(), err)
	}
	return b.String(), nil
}

// templateFields lists the top-level names a template reads: "cart" for {{ .cart }}.
func templateFields(t *template.Template) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x == nil {
				return
			}
			for _, c := range x.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.FieldNode:
			if len(x.Ident) > 0 && !seen[x.Ident[0]] {
				seen[x.Ident[0]] = true
				out = append(out, x.Ident[0])
			}
		case *parse.VariableNode: // $.name
			if len(x.Ident) > 1 && x.Ident[0] == "$" && !seen[x.Ident[1]] {
				seen[x.Ident[1]] = true
				out = append(out, x.Ident[1])
			}
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		}
	}
	if t != nil && t.Tree != nil {
		walk(t.Tree.Root)
	}
	return out
}

// newNonce returns a fresh random marker for {{ .Nonce }}.
func newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "vigil-" + hex.EncodeToString(b[:])
}
