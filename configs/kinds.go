package configs

import "reflect"

// Spec is one kind's part of a check: the keys a check of that kind takes besides the
// common ones. Each kind keeps its spec type, defaults and rules in one file,
// kind_<name>.go, and one line in the kinds table below.
type Spec interface {
	// applyDefaults fills what the file left unset; the check's common keys (timeout
	// among them) already have their values.
	applyDefaults(c *Config, ch *Check)
	// validate reports what is wrong with the spec; p is the check's key path.
	validate(v *validator, ch *Check, p string)
}

// kinds is the table of check kinds, in the order the README documents them: the name a
// check's `kind:` takes and a new, empty spec to decode its keys into. Decoding, defaults,
// validation and Kinds all read it; the checks package keeps the matching table of probers.
var kinds = []struct {
	name    string
	newSpec func() Spec
}{
	{KindHTTP, func() Spec { return &HTTPSpec{} }},
	{KindScript, func() Spec { return &ScriptSpec{} }},
	{KindBrowser, func() Spec { return &BrowserSpec{} }},
	{KindPropagation, func() Spec { return &PropagationSpec{} }},
	{KindSLA, func() Spec { return &SLASpec{} }},
	{KindLogscan, func() Spec { return &LogscanSpec{} }},
	{KindPromQL, func() Spec { return &PromQLSpec{} }},
	{KindFleet, func() Spec { return &FleetSpec{} }},
	{KindTCP, func() Spec { return &TCPSpec{} }},
	{KindTLS, func() Spec { return &TLSSpec{} }},
	{KindDNS, func() Spec { return &DNSSpec{} }},
	{KindHeartbeat, func() Spec { return &HeartbeatSpec{} }},
	{KindWebSocket, func() Spec { return &WebSocketSpec{} }},
	{KindGRPC, func() Spec { return &GRPCSpec{} }},
}

// Kinds lists every check kind, in the order the README documents them.
func Kinds() []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.name
	}
	return out
}

// newSpec returns an empty spec for kind, or nil when there is no such kind.
func newSpec(kind string) Spec {
	for _, k := range kinds {
		if k.name == kind {
			return k.newSpec()
		}
	}
	return nil
}

// kindWithKey names the first kind whose spec has key, for "wrong kind" errors.
func kindWithKey(key string) string {
	for _, k := range kinds {
		if _, ok := structFields(reflect.TypeOf(k.newSpec()).Elem())[key]; ok {
			return k.name
		}
	}
	return ""
}
