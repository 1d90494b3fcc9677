package configs

import (
	"regexp"
	"strings"
	"testing"
)

// methodForm is package.Service/Method as protobuf's grammar writes it.
var methodForm = regexp.MustCompile(`^/?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/[A-Za-z_][A-Za-z0-9_]*$`)

// GRPCMethod accepts package.Service/Method only, and what it accepts is what it read.
func FuzzGRPCMethod(f *testing.F) {
	for _, s := range []string{"shop.orders.v1.Orders/GetOrder", "/grpc.health.v1.Health/Check", "a/b", "a.b/c/d", "a..b/c", "1a/b", "a/_b9", "é/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		service, name, ok := GRPCMethod(s)
		if want := methodForm.MatchString(s); ok != want {
			t.Fatalf("GRPCMethod(%q) ok = %v; the grammar says %v", s, ok, want)
		}
		if ok && service+"/"+name != strings.TrimPrefix(s, "/") {
			t.Fatalf("GRPCMethod(%q) = %q, %q", s, service, name)
		}
	})
}
