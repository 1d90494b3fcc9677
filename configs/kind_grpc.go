package configs

// KindGRPC asks a gRPC server's standard health service (grpc.health.v1) how a service is.
const KindGRPC = "grpc"

// GRPCSpec is the grpc kind.
type GRPCSpec struct {
	Address string `koanf:"address"`
	// Service is the name asked about; empty asks about the server as a whole.
	Service   string            `koanf:"service"`
	TLS       bool              `koanf:"tls"`
	TLSConfig TLS               `koanf:"tls_config"`
	Metadata  map[string]string `koanf:"metadata"`
}

func (s *GRPCSpec) applyDefaults(*Config, *Check) {}

func (s *GRPCSpec) validate(v *validator, _ *Check, p string) {
	v.hostPort(p+".address", s.Address)
	if s.TLSConfig != (TLS{}) && !s.TLS {
		v.errf(p+".tls_config", "set tls: true, or remove tls_config", "tls_config is set but the connection is plaintext")
	}
	v.tls(p+".tls_config", &s.TLSConfig)
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
