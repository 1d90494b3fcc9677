package checks

// How a propagation reader's answer shows the marker: its body contains it (the default, or
// a templated contains), a GJSON path's value is it, or an expression says so.

import (
	"bytes"
	"errors"
	"strings"
	"text/template"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"
	"github.com/vigil-monitor/vigil/configs"
)

// readMatchVars are what a reader's match.expr sees.
var readMatchVars = types.Map{
	"status":  types.Int,
	"body":    types.String,
	"json":    types.Any,
	"headers": types.TypeOf(map[string]string{}),
	"nonce":   types.String,
}

// readMatcher decides whether a read response shows the marker.
type readMatcher struct {
	contains *template.Template // rendered with {{ .Nonce }}
	path     string             // gjson path whose value (or an element of it) equals the nonce
	program  *vm.Program        // expr over readMatchVars
	tree     ast.Node           // the expression parsed, to explain an evaluation error
	source   string
}

func (m *readMatcher) String() string { return m.source }

// shows reports whether resp shows nonce. Only a 2xx answer can: an error page that names
// the path or the query asked (a 404 for /api/items/{marker}, as many frameworks' are)
// holds the marker without the reader having it.
func (m *readMatcher) shows(resp *Response, nonce string) (bool, error) {
	if resp.Status < 200 || resp.Status > 299 {
		return false, nil
	}
	switch {
	case m.contains != nil:
		var b strings.Builder
		if err := m.contains.Execute(&b, map[string]any{"Nonce": nonce}); err != nil {
			return false, err
		}
		return bytes.Contains(resp.Body, []byte(b.String())), nil
	case m.path != "":
		return gjsonHas(gjson.GetBytes(resp.Body, m.path), nonce, 0), nil
	case m.program != nil:
		vars := map[string]any{"status": resp.Status, "body": string(resp.Body),
			"json": resp.JSON, "headers": flattenHeaders(resp.Header), "nonce": nonce}
		out, err := expr.Run(m.program, vars)
		if err != nil {
			return false, errors.New(explainEvalError(err, m.tree, evalScope{env: readMatchVars, vars: vars,
				details: map[string]string{"json": noJSON(resp)}}))
		}
		ok, _ := out.(bool)
		return ok, nil
	}
	return bytes.Contains(resp.Body, []byte(nonce)), nil
}

// gjsonHas reports whether r is the nonce, or an array (from a # query) holding it.
func gjsonHas(r gjson.Result, nonce string, depth int) bool {
	if r.IsArray() && depth < 4 {
		found := false
		r.ForEach(func(_, v gjson.Result) bool {
			found = gjsonHas(v, nonce, depth+1)
			return !found
		})
		return found
	}
	return r.Exists() && r.Type == gjson.String && r.Str == nonce
}

// readMatch compiles a reader's match; nil when it is bad (reported through b).
func (b *builder) readMatch(path string, m configs.ReadMatch) *readMatcher {
	switch {
	case m.Contains != "":
		t, err := compileTemplate("contains", m.Contains)
		if err != nil {
			b.errf(path+".contains", "templates look like {{ .Nonce }}", "%v", err)
			return nil
		}
		var fields []string
		if t != nil {
			fields = templateFields(t)
		}
		for _, f := range fields {
			if f != "Nonce" {
				b.errf(path+".contains", "only {{ .Nonce }} is available here", "template reads .%s", f)
				return nil
			}
		}
		if len(fields) == 0 {
			b.errf(path+".contains", `put the run's marker in it, e.g. contains: '"marker":"{{ .Nonce }}"'`,
				"%q does not read {{ .Nonce }}: %s", m.Contains, matchWithoutMarker)
			return nil
		}
		return &readMatcher{contains: t, source: "contains " + m.Contains}
	case m.Path != "":
		return &readMatcher{path: m.Path, source: "path " + m.Path}
	case m.Expr != "":
		program, err := expr.Compile(m.Expr, expr.Env(readMatchVars), expr.AsBool())
		if err != nil {
			b.errf(path+".expr", "variables: body, json, status, headers, nonce; e.g. any(json.items, .id == nonce)", "%v",
				explainCompileError(err, readMatchVars))
			return nil
		}
		if !readsIdentifier(program.Node(), "nonce") {
			b.errf(path+".expr", "compare something in the answer with nonce, e.g. any(json.items, .id == nonce)",
				"the expression does not read nonce: %s", matchWithoutMarker)
			return nil
		}
		var tree ast.Node
		if t, err := parser.Parse(m.Expr); err == nil {
			tree = t.Node
		}
		return &readMatcher{program: program, tree: tree, source: "expr " + m.Expr}
	}
	return &readMatcher{source: "body contains the marker"}
}

// matchWithoutMarker says why a match must read the run's marker: one that does not is
// true of an answer from before the write (an old item, a page a CDN cached), so the
// first read shows it and the run passes on nothing measured.
const matchWithoutMarker = "it is true of an answer from before the write (a page a cache kept), so every reader would show it at once and nothing is measured"

// readsIdentifier reports whether the expression reads the variable name.
func readsIdentifier(node ast.Node, name string) bool {
	v := &identFinder{name: name}
	ast.Walk(&node, v)
	return v.found
}

type identFinder struct {
	name  string
	found bool
}

func (v *identFinder) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && id.Value == v.name {
		v.found = true
	}
}
