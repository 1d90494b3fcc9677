package configs

import (
	"encoding/json"
	"strings"
)

// KindGRPC asks a gRPC server's standard health service (grpc.health.v1) how a service is,
// or calls one of its unary methods, found through server reflection.
const KindGRPC = "grpc"

// GRPCSpec is the grpc kind.
type GRPCSpec struct {
	Address string `koanf:"address"`
	// Service is the name asked about; empty asks about the server as a whole.
	Service   string            `koanf:"service"`
	TLS       bool              `koanf:"tls"`
	TLSConfig TLS               `koanf:"tls_config"`
	Metadata  map[string]string `koanf:"metadata"`
	// Method is a unary method to call instead of the health check, package.Service/Method;
	// its messages are read from the server's reflection service.
	Method string `koanf:"method"`
	// Request is the method's request message in protobuf's JSON form ({} by default).
	Request string `koanf:"request"`
}

// GRPCMethod splits package.Service/Method (a leading / allowed) into the service's full
// name and the method's; ok is false when method is not of that form.
func GRPCMethod(method string) (service, name string, ok bool) {
	service, name, ok = strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok || !protoName(service, true) || !protoName(name, false) {
		return "", "", false
	}
	return service, name, true
}

// protoName says whether s is a protobuf identifier, or with dots a full name whose every
// part is one.
func protoName(s string, dotted bool) bool {
	if s == "" {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || !dotted && part != s {
			return false
		}
		for i, c := range part {
			letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

func (s *GRPCSpec) applyDefaults(*Config, *Check) {}

func (s *GRPCSpec) validate(v *validator, _ *Check, p string) {
	v.hostPort(p+".address", s.Address)
	if s.TLSConfig != (TLS{}) && !s.TLS {
		v.errf(p+".tls_config", "set tls: true, or remove tls_config", "tls_config is set but the connection is plaintext")
	}
	v.tls(p+".tls_config", &s.TLSConfig)
	if s.Method != "" {
		if _, _, ok := GRPCMethod(s.Method); !ok {
			v.errf(p+".method", "write the method's full name, package.Service/Method, e.g. shop.orders.v1.Orders/GetOrder", "%q is not package.Service/Method", s.Method)
		}
		if s.Service != "" {
			v.errf(p+".service", "remove service: it names what the health check asks about, and with method the check calls the method instead", "service and method are both set")
		}
	}
	if s.Request != "" {
		var obj map[string]json.RawMessage
		switch err := json.Unmarshal([]byte(s.Request), &obj); {
		case s.Method == "":
			v.errf(p+".request", "set method: package.Service/Method, or remove request (the health check takes none)", "request is set without a method")
		case err != nil || obj == nil:
			v.errf(p+".request", `write the request message as a JSON object in protobuf's JSON form, e.g. '{"id": "order-1"}'`, "request is not a JSON object: %s", jsonProblem(err))
		}
	}
	for k := range s.Metadata {
		if k == "" || k != lowerASCII(k) || k[0] == ':' {
			v.errf(p+".metadata."+k, "use lower-case keys such as x-tenant (gRPC metadata keys are lower case; ':' keys are reserved)", "%q is not a metadata key", k)
		}
	}
}

// lowerASCII lower-cases ASCII letters only, as DNS names and gRPC metadata keys compare:
// strings.ToLower would turn bytes that are not UTF-8 into three-byte replacement
// characters, and a name into another one.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// jsonProblem says what is wrong with a JSON text that is not an object.
func jsonProblem(err error) string {
	if err == nil {
		return "it is null"
	}
	return err.Error()
}
