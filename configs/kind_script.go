package configs

import (
	"reflect"
	"strings"
)

// KindScript is an ordered API journey whose later steps use values earlier ones extracted.
const KindScript = "script"

// ScriptSpec is the script kind: an ordered API journey.
type ScriptSpec struct {
	Steps []*ScriptStep `koanf:"steps"`
	// ServedVersion is where each step's answer names the version that gave it: in a
	// deploy's verification a step answered by another version makes the run
	// inconclusive.
	ServedVersion *ServedVersion `koanf:"served_version"`
}

// ScriptStep is one request of a journey, an HTTP request or a call of a gRPC method;
// Extract pulls values for later steps.
type ScriptStep struct {
	Name    string  `koanf:"name"`
	Request Request `koanf:"request"`
	// GRPC makes the step a call of a unary gRPC method (address, method, request,
	// metadata, tls) instead of an HTTP request.
	GRPC    *GRPCSpec         `koanf:"grpc"`
	Extract map[string]string `koanf:"extract"`
	Assert  []string          `koanf:"assert"`
}

func (s *ScriptSpec) applyDefaults(_ *Config, ch *Check) {
	for _, st := range s.Steps {
		if st != nil && st.GRPC == nil {
			defaultRequest(&st.Request, ch.Timeout)
		}
	}
}

func (s *ScriptSpec) validate(v *validator, _ *Check, p string) {
	v.servedVersion(p+".served_version", s.ServedVersion)
	if len(s.Steps) == 0 {
		v.errf(p+".steps", "add at least one step with a request", "a script needs steps")
	}
	for i, st := range s.Steps {
		sp := indexPath(p+".steps", i)
		if st == nil {
			v.errf(sp, "remove the empty item", "empty step")
			continue
		}
		if st.GRPC != nil {
			st.validateGRPC(v, sp)
		} else {
			v.request(sp+".request", &st.Request)
		}
		for name, from := range st.Extract {
			if !validExtract(from) {
				v.errf(sp+".extract."+name, `write json.PATH (a gjson path), header.NAME, status or body`, "cannot extract from %q", from)
			}
		}
	}
}

// validateGRPC checks a step that calls a gRPC method.
func (st *ScriptStep) validateGRPC(v *validator, sp string) {
	if !reflect.DeepEqual(st.Request, Request{}) {
		v.errf(sp, "a step is an HTTP request or a gRPC call: keep request or grpc, and make the other a step of its own", "both request and grpc are set")
	}
	st.GRPC.validate(v, nil, sp+".grpc")
	if st.GRPC.Method == "" { // service with a method is the grpc kind's own error
		v.errf(sp+".grpc.method", "write the unary method the step calls, package.Service/Method, e.g. shop.orders.v1.Orders/GetOrder (a step calls a method; service is for a grpc check's health call)", "method is not set")
	}
}

// validExtract accepts the extraction sources a script step supports.
func validExtract(from string) bool {
	switch {
	case from == "status", from == "body":
		return true
	case strings.HasPrefix(from, "json.") && len(from) > 5, from == "json":
		return true
	case strings.HasPrefix(from, "header.") && len(from) > 7:
		return true
	}
	return false
}
