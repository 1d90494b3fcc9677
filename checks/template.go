package checks

import (
	"crypto/rand"
	"encoding/hex"
	"text/template"
	"text/template/parse"
)

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

// NewNonce returns a fresh random marker for {{ .Nonce }}.
func NewNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "vigil-" + hex.EncodeToString(b[:])
}
