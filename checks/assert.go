package checks

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/parser/lexer"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/vigil-monitor/vigil/configs"
)

// Assertion is one compiled, type-checked expression over a run's variables.
type Assertion struct {
	Source       string
	program      *vm.Program
	operands     []operand
	usesBaseline bool
	// roots are the variables the assertion reads (the first name of each reference).
	roots map[string]bool
	// tree is the parsed expression, for FalseForGood and to explain an evaluation error;
	// env is the variables' types it was compiled against.
	tree ast.Node
	env  types.Map
}

// operand is a variable reference inside an assertion, evaluated on failure so the reason
// can quote what was seen.
type operand struct {
	text    string
	program *vm.Program
}

// Env builds the assertion environment type for a kind's variables: the variables, the
// common duration_ms, the same variables under baseline, and deploy.
func Env(vars types.Map) types.Map {
	own := types.Map{"duration_ms": types.Float64}
	maps.Copy(own, vars)
	env := maps.Clone(own)
	env["baseline"] = baselineType(own)
	env["deploy"] = deployType
	return env
}

// baselineType is the type of a variable under baseline: every number is a float64 there,
// as a baseline is a median, and a deploy's baseline and the runs it comes from are kept as
// JSON in the store. Declaring baseline.status an int would let `status == baseline.status`
// compile to an int-only comparison that fails on the float64 it meets at run time (a run
// that cannot be evaluated fails, and a failed deploy is rolled back).
func baselineType(t types.Type) types.Type {
	if m, ok := t.(types.Map); ok {
		out := make(types.Map, len(m))
		for k, v := range m {
			out[k] = baselineType(v)
		}
		return out
	}
	rt := t.Nature().Type
	if rt == nil || t.String() != rt.String() { // any, nil, and Array: left as they are
		return t
	}
	// A map or a list comes back from JSON as map[string]any or []any, where a missing key
	// is nil, not a typed zero: typed as declared, `baseline.headers['X'] == headers['X']`
	// would compile to a string comparison that fails on the nil of a header the baseline
	// did not have. Typed any, it compares as the values are.
	switch rt.Kind() {
	case reflect.Map:
		return types.TypeOf(map[string]any{})
	case reflect.Slice:
		return types.TypeOf([]any{})
	}
	if f := floatNumbers(rt); f != rt {
		return types.TypeOf(reflect.Zero(f).Interface())
	}
	return t
}

// floatNumbers is t with every integer kind in it, map values and slice elements included,
// made float64.
func floatNumbers(t reflect.Type) reflect.Type {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32:
		return reflect.TypeFor[float64]()
	case reflect.Map:
		if v := floatNumbers(t.Elem()); v != t.Elem() {
			return reflect.MapOf(t.Key(), v)
		}
	case reflect.Slice:
		if v := floatNumbers(t.Elem()); v != t.Elem() {
			return reflect.SliceOf(v)
		}
	}
	return t
}

// CompileAssertion compiles src against env. Its errors are plain sentences, with a
// did-you-mean for misspelt variables.
func CompileAssertion(src string, env types.Map) (*Assertion, error) {
	code := rewriteWordOperators(src, env)
	program, err := expr.Compile(code, expr.Env(env), expr.AsBool())
	if err != nil {
		return nil, explainCompileError(err, env)
	}
	a := &Assertion{Source: src, program: program, roots: map[string]bool{}, env: env}
	tree, err := parser.Parse(code)
	if err != nil {
		return a, nil
	}
	a.tree = tree.Node
	seen := map[string]bool{}
	var texts []string
	ast.Walk(&tree.Node, visitorFunc(func(n ast.Node) {
		var text, root string
		switch x := n.(type) {
		case *ast.IdentifierNode:
			text, root = x.Value, x.Value
		case *ast.MemberNode:
			text, root = x.String(), memberRoot(x)
		case *ast.BuiltinNode:
			if x.Name == "len" {
				text = x.String()
			}
		}
		if root == "baseline" {
			a.usesBaseline = true
		}
		if root == "$env" { // a variable named like a word operator: $env.matches
			rest := strings.TrimPrefix(text, "$env.")
			root = rest[:strings.IndexAny(rest+".[", ".[")]
		}
		if root != "" {
			a.roots[root] = true
		}
		if text != "" && !seen[text] {
			seen[text] = true
			texts = append(texts, text)
		}
	}))
	for _, t := range pruneOperands(texts) {
		p, err := expr.Compile(t, expr.Env(env))
		if err != nil {
			continue // inside a closure (#), say: not meaningful on its own
		}
		a.operands = append(a.operands, operand{text: strings.TrimPrefix(t, "$env."), program: p})
	}
	return a, nil
}

// rewriteWordOperators lets a variable share its name with one of expr's word operators:
// logscan's `matches == 0` is otherwise a syntax error, as expr reads `matches` as the
// regex operator. Where such a word stands in an operand's place (at the start, after an
// operator or an opening bracket) and names a variable, it becomes $env.matches; as an
// operator (`line matches "x"`) or a field (`baseline.matches`) it is left alone.
func rewriteWordOperators(src string, env types.Map) string {
	tokens, err := lexer.Lex(file.NewSource(src))
	if err != nil {
		return src
	}
	runes := []rune(src)
	var out []rune
	last := 0
	var prev *lexer.Token
	for i := range tokens {
		tk := &tokens[i]
		_, isVar := env[tk.Value]
		operandPlace := prev == nil ||
			(prev.Kind == lexer.Operator && prev.Value != "." && prev.Value != "?." && !strings.HasPrefix(prev.Value, "#")) ||
			(prev.Kind == lexer.Bracket && strings.ContainsAny(prev.Value, "([{"))
		if tk.Kind == lexer.Operator && isVar && operandPlace && tk.From >= last && tk.From+len([]rune(tk.Value)) <= len(runes) &&
			string(runes[tk.From:tk.From+len([]rune(tk.Value))]) == tk.Value {
			out = append(out, runes[last:tk.From]...)
			out = append(out, []rune("$env."+tk.Value)...)
			last = tk.From + len([]rune(tk.Value))
		}
		prev = tk
	}
	if out == nil {
		return src
	}
	return string(append(out, runes[last:]...))
}

type visitorFunc func(ast.Node)

func (f visitorFunc) Visit(n *ast.Node) { f(*n) }

// Reads reports whether the assertion reads variable name.
func (a *Assertion) Reads(name string) bool { return a.roots[name] }

// FalseForGood reports whether the assertion is false for env and stays false however the
// counters grow: counters names variables that only ever increase while a run goes on (a
// page's exception count). It understands comparisons of a counter with a constant
// (js_errors == 0, failed_requests < 3, 2 >= js_errors) joined by && and ||; anything else
// is never false for good. A run can stop at the first fatal error with it: once
// `js_errors == 0` is false, no amount of waiting makes it true.
func (a *Assertion) FalseForGood(env map[string]any, counters map[string]bool) bool {
	return a.tree != nil && falseForGood(a.tree, env, counters)
}

func falseForGood(n ast.Node, env map[string]any, counters map[string]bool) bool {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return false
	}
	switch b.Operator {
	case "&&", "and":
		return falseForGood(b.Left, env, counters) || falseForGood(b.Right, env, counters)
	case "||", "or":
		return falseForGood(b.Left, env, counters) && falseForGood(b.Right, env, counters)
	}
	op := b.Operator
	counter, limit, ok := counterAndConstant(b.Left, b.Right, env, counters)
	if !ok {
		counter, limit, ok = counterAndConstant(b.Right, b.Left, env, counters)
		if !ok {
			return false
		}
		op = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}[op]
	}
	// counter OP limit, where counter can only grow from its value now.
	switch op {
	case "==", "<=":
		return counter > limit
	case "<":
		return counter >= limit
	}
	return false // >, >=, != can still turn true as the counter grows
}

// counterAndConstant reads x as a counter's current value and y as a number constant.
func counterAndConstant(x, y ast.Node, env map[string]any, counters map[string]bool) (counter, limit float64, ok bool) {
	id, isID := x.(*ast.IdentifierNode)
	if !isID || !counters[id.Value] {
		return 0, 0, false
	}
	switch c := y.(type) {
	case *ast.IntegerNode:
		limit = float64(c.Value)
	case *ast.FloatNode:
		limit = c.Value
	default:
		return 0, 0, false
	}
	counter, ok = asFloat(env[id.Value])
	return counter, limit, ok
}

func memberRoot(m *ast.MemberNode) string {
	var n ast.Node = m
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			n = x.Node
		case *ast.IdentifierNode:
			return x.Value
		default:
			return ""
		}
	}
}

// pruneOperands drops references that are the base of a longer one: with baseline.p95_ms
// there is no point printing all of baseline.
func pruneOperands(texts []string) []string {
	var out []string
	for _, t := range texts {
		covered := false
		for _, u := range texts {
			if u != t && (strings.HasPrefix(u, t+".") || strings.HasPrefix(u, t+"[") || strings.HasPrefix(u, t+"?.")) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, t)
		}
	}
	return out
}

var (
	unknownName  = regexp.MustCompile(`^unknown name (\S+)`)
	unknownField = regexp.MustCompile(`^unknown field (\S+)`)
	invalidOp    = regexp.MustCompile(`^invalid operation: (\S+) \((.*)\)$`)
)

func explainCompileError(err error, env types.Map) error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		if fix := compileFix(err.Error()); fix != "" {
			return fmt.Errorf("%w; %s", err, fix)
		}
		return err
	}
	msg := fe.Message
	if m := unknownName.FindStringSubmatch(msg); m != nil {
		names := slices.Sorted(maps.Keys(env))
		return fmt.Errorf("unknown variable %q; %s", m[1], configs.DidYouMean(m[1], names))
	}
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		var names []string
		if b, ok := env["baseline"].(types.Map); ok {
			names = slices.Sorted(maps.Keys(b))
		}
		return fmt.Errorf("unknown field %q; %s", m[1], configs.DidYouMean(m[1], names))
	}
	if m := invalidOp.FindStringSubmatch(msg); m != nil {
		msg = m[2] + " for " + m[1]
	}
	if fe.Column > 0 {
		msg = fmt.Sprintf("%s (at column %d)", msg, fe.Column+1)
	}
	if fix := compileFix(fe.Message); fix != "" {
		msg += "; " + fix
	}
	return errors.New(msg)
}

// compileFix is what to do about a syntax or type error of expr's, "" when its own
// message says it.
func compileFix(msg string) string {
	switch {
	case strings.HasPrefix(msg, `unexpected token Operator("=")`):
		return "compare with ==, e.g. status == 200"
	case strings.HasPrefix(msg, "unexpected token EOF"):
		return "the expression ends too soon: finish it, e.g. status == 200 && duration_ms < 500"
	case strings.HasPrefix(msg, "unexpected token"), strings.HasPrefix(msg, "unexpected end"):
		return `an assertion is one expression, e.g. status == 200 && duration_ms < 500; quote text with ' or "`
	case strings.HasPrefix(msg, "expected bool"):
		return "an assertion must be true or false: compare the value, e.g. status == 200"
	case strings.HasPrefix(msg, "mismatched types"), strings.HasPrefix(msg, "invalid operation"):
		return "compare numbers with numbers and text with text (status == 200, body contains 'ok'), or convert with int(x), float(x) or string(x)"
	case strings.HasPrefix(msg, "invalid argument for len"):
		return "len counts the items of text, a list or a map, e.g. len(body) > 0"
	}
	return ""
}

// Eval runs the assertion. When it is false (or cannot be evaluated) the second value says
// why, quoting the expression and the values of the variables it reads, credentials masked.
func (a *Assertion) Eval(env map[string]any, details map[string]string) (bool, string) {
	return a.eval(env, details, nil)
}

// eval is Eval with the run's redactor: a quoted value is redacted before it is cut short,
// so the cut never leaves the start of a secret, and an operand that names a credential
// (json.access_token, headers['Set-Cookie']) is masked whole.
func (a *Assertion) eval(env map[string]any, details map[string]string, red *configs.Redactor) (bool, string) {
	out, err := expr.Run(a.program, env)
	if err != nil {
		return false, fmt.Sprintf("%s could not be evaluated: %s", a.Source,
			explainEvalError(err, a.tree, evalScope{env: a.env, vars: env, details: details, red: red}))
	}
	if ok, _ := out.(bool); ok {
		return true, ""
	}
	var seen []string
	for _, op := range a.operands {
		v, err := expr.Run(op.program, env)
		if err != nil {
			continue
		}
		if sensitiveOperand(op.text) && v != nil {
			v = configs.Masked
		} else {
			v = red.Value(v)
		}
		s := op.text + " = " + formatValue(v)
		if d := details[op.text]; d != "" {
			s += " (" + d + ")"
		}
		seen = append(seen, s)
	}
	if len(seen) == 0 {
		return false, a.Source + " is false"
	}
	return false, a.Source + " is false: " + strings.Join(seen, ", ")
}

// sensitiveOperand reports whether an operand's last field names a credential.
func sensitiveOperand(text string) bool {
	last := text
	if i := strings.LastIndexAny(text, ".["); i >= 0 {
		last = text[i+1:]
	}
	return configs.SensitiveName(strings.Trim(last, `[]'"`))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
