package checks

// What an assertion that could not be evaluated tells the operator. expr's own runtime
// errors name its internals: `invalid argument for len (type <nil>) (1:1)` says neither which
// variable was missing nor why. The error's position names the part of the expression that
// failed (a function call, an operator, a field or an index); its operands are evaluated
// again on their own, and the first one missing or of the wrong kind is named, with why
// (the run's explanation of the variable, such as "the body is not JSON", or the keys the
// map had).

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/vigil-monitor/vigil/configs"
)

// evalScope is what an explanation evaluates parts of the expression against.
type evalScope struct {
	env     types.Map      // the variables' types, to compile a part on its own
	vars    map[string]any // the run's values
	details map[string]string
	red     *configs.Redactor
}

// explainEvalError says why tree could not be evaluated, from expr's runtime error err:
// `len(json.results): json.results is missing (the body is not JSON)`. It falls back to
// expr's message, first line, when the error's position names no part it can explain.
func explainEvalError(err error, tree ast.Node, s evalScope) string {
	raw := firstLine(err.Error())
	var fe *file.Error
	if tree == nil || !errors.As(err, &fe) {
		return raw
	}
	var failed ast.Node
	outer := map[ast.Node]ast.Node{} // a field or an index, by the value it is taken from
	ast.Walk(&tree, visitorFunc(func(n ast.Node) {
		switch x := n.(type) {
		case *ast.MemberNode:
			outer[x.Node] = n
		case *ast.SliceNode:
			outer[x.Node] = n
		case *ast.ChainNode:
			outer[x.Node] = n
		}
		if failed != nil || n.Location().From != fe.From {
			return
		}
		switch n.(type) {
		case *ast.MemberNode, *ast.BuiltinNode, *ast.CallNode, *ast.BinaryNode, *ast.UnaryNode, *ast.SliceNode:
			failed = n // Walk visits children first: the innermost part at the position
		}
	}))
	if failed == nil {
		return raw
	}
	var why string
	var missing bool
	switch x := failed.(type) {
	case *ast.MemberNode, *ast.SliceNode:
		// json.data.rows[0] failed at json.data: the operand the operator wrote is the
		// whole path, and the step itself names the part (no prefix).
		for outer[failed] != nil {
			failed = outer[failed]
		}
		return orRaw(s.missing(failed), raw)
	case *ast.BuiltinNode:
		why, missing = s.operands(x.Arguments)
		if !missing && why != "" {
			why += ", which " + x.Name + " cannot take"
		}
	case *ast.CallNode:
		why, missing = s.operands(x.Arguments)
		if !missing && why != "" {
			why += ", which " + shownText(x.Callee) + " cannot take"
		}
	case *ast.BinaryNode:
		why, missing = s.operands([]ast.Node{x.Left, x.Right})
	case *ast.UnaryNode:
		why, missing = s.operands([]ast.Node{x.Node})
	}
	if why == "" {
		return raw
	}
	out := shownText(failed) + ": " + why
	if fix := compileFix(fe.Message); fix != "" && !missing {
		out += "; " + fix
	}
	return out
}

func orRaw(why, raw string) string {
	if why == "" {
		return raw
	}
	return why
}

// operands names the first of args that is missing (missing is then true), else says what
// each variable operand is; "" when it cannot tell.
func (s evalScope) operands(args []ast.Node) (why string, missing bool) {
	var kinds []string
	for _, arg := range args {
		if constant(arg) {
			continue
		}
		v, ok := s.value(arg)
		if !ok || v == nil {
			if why := s.missing(arg); why != "" {
				return why, true
			}
			continue
		}
		kinds = append(kinds, shownText(arg)+" is "+s.describe(shownText(arg), v))
	}
	return strings.Join(kinds, " and "), false
}

// missing says why n, a variable or a field or an index of one, has no value: the first
// step of it that has none, and what the step before it held.
func (s evalScope) missing(n ast.Node) string {
	chain := []ast.Node{n}
	for {
		var inner ast.Node
		switch x := chain[0].(type) {
		case *ast.MemberNode:
			inner = x.Node
		case *ast.SliceNode:
			inner = x.Node
		case *ast.ChainNode:
			inner = x.Node
		}
		if inner == nil {
			break
		}
		chain = append([]ast.Node{inner}, chain...)
	}
	whole := shownText(n)
	for i, step := range chain {
		v, ok := s.value(step)
		if ok && v != nil {
			continue
		}
		name := shownText(step)
		if i == 0 {
			if d := s.details[name]; d != "" {
				return whole + " is missing (" + d + ")"
			}
			if _, declared := s.vars[name]; !declared && name != "" {
				return whole + " is missing (the run has no " + name + ")"
			}
			return whole + " is missing (" + name + " is nil)"
		}
		parent := shownText(chain[i-1])
		pv, _ := s.value(chain[i-1])
		why := s.absentFrom(parent, pv, chain[i])
		if why == "" {
			why = name + " is nil"
		}
		return whole + " is missing (" + why + ")"
	}
	return ""
}

// absentFrom says why step (a field or an index) has no value in parent, whose value is pv.
func (s evalScope) absentFrom(parent string, pv any, step ast.Node) string {
	m, ok := step.(*ast.MemberNode)
	if !ok {
		return ""
	}
	key, isKey := m.Property.(*ast.StringNode)
	rv := reflect.ValueOf(pv)
	switch {
	case isKey && rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String:
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		if slices.Contains(keys, key.Value) {
			return fmt.Sprintf("%s.%s is null", parent, key.Value)
		}
		return fmt.Sprintf("%s has no %q; %s", parent, key.Value, keysHint(key.Value, keys))
	case rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array || rv.Kind() == reflect.String:
		if isKey {
			return parent + " is " + s.describe(parent, pv) + ", not a map"
		}
		return fmt.Sprintf("%s has %d %s", parent, rv.Len(), plural(rv.Len(), rv.Kind() == reflect.String))
	case pv != nil:
		return parent + " is " + s.describe(parent, pv) + ", which has no fields or items"
	}
	return ""
}

func plural(n int, characters bool) string {
	switch {
	case characters && n == 1:
		return "character"
	case characters:
		return "characters"
	case n == 1:
		return "item"
	}
	return "items"
}

// keysHint is the fix for a field a map does not have: the nearest key, else its keys.
func keysHint(want string, keys []string) string {
	if n := configs.Nearest(want, keys); n != "" {
		return fmt.Sprintf("did you mean %q?", n)
	}
	switch {
	case len(keys) == 0:
		return "it is empty"
	case len(keys) > 12:
		return "its keys include " + strings.Join(keys[:12], ", ")
	}
	return "its keys: " + strings.Join(keys, ", ")
}

// describe is a value's kind, as an operator reads it, with the value when it is short
// (credentials masked as the reason's quoted values are).
func (s evalScope) describe(text string, v any) string {
	shown := func() string {
		if sensitiveOperand(text) {
			return configs.Masked
		}
		return formatValue(s.red.Value(v))
	}
	switch x := v.(type) {
	case string:
		return "text (" + shown() + ")"
	case bool:
		return "a boolean (" + strconv.FormatBool(x) + ")"
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number (" + shown() + ")"
	case reflect.Slice, reflect.Array:
		return fmt.Sprintf("a list of %d %s", rv.Len(), plural(rv.Len(), false))
	case reflect.Map:
		keys := make([]string, 0, rv.Len())
		for _, k := range rv.MapKeys() {
			keys = append(keys, fmt.Sprint(k.Interface()))
		}
		slices.Sort(keys)
		if len(keys) > 6 {
			keys = append(keys[:6], "...")
		}
		return "a map {" + strings.Join(keys, ", ") + "}"
	}
	return fmt.Sprintf("a %T", v)
}

// value evaluates n on its own; false when it cannot be (a part of a closure, or a step
// that fails itself).
func (s evalScope) value(n ast.Node) (any, bool) {
	if id, ok := n.(*ast.IdentifierNode); ok {
		v, ok := s.vars[strings.TrimPrefix(id.Value, "$env.")]
		return v, ok
	}
	p, err := expr.Compile(n.String(), expr.Env(s.env))
	if err != nil {
		return nil, false
	}
	v, err := expr.Run(p, s.vars)
	return v, err == nil
}

// constant reports whether n is a literal: its kind is in the expression for all to see.
func constant(n ast.Node) bool {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode, *ast.NilNode, *ast.ConstantNode:
		return true
	}
	return false
}

// shownText is n as the operator wrote it (without the $env. a word-operator variable gets).
func shownText(n ast.Node) string {
	return strings.ReplaceAll(n.String(), "$env.", "")
}
