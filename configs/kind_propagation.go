package configs

import (
	"fmt"
	"reflect"
	"time"
)

// KindPropagation writes a unique marker and times until every read endpoint shows it.
const KindPropagation = "propagation"

// PropagationSpec is the propagation kind: write a marker, time until every reader sees it.
type PropagationSpec struct {
	Write   Request       `koanf:"write"`
	Read    []*Reader     `koanf:"read"`
	Poll    time.Duration `koanf:"poll"`
	Cleanup *Request      `koanf:"cleanup"`
	Match   ReadMatch     `koanf:"match"`
	Backoff BackoffCfg    `koanf:"backoff"`
	// Confirm is how many reads in a row must show the marker for a reader to show it:
	// behind a balancer each read may land on another backend, and one that lags shows up
	// as a read without it after one with it.
	Confirm int `koanf:"confirm"`
	// ServedVersion is where the write's and every reader's answer name the version that
	// gave them: in a deploy's verification a write answered by another version makes the
	// run inconclusive, and a reader's answers from another version are left out (the old
	// pods' propagation says nothing of the new version's).
	ServedVersion *ServedVersion `koanf:"served_version"`
}

// Reader is one read endpoint. In YAML it is a URL string or a full request.
type Reader struct {
	Name    string    `koanf:"name"`
	Request Request   `koanf:"request"`
	Match   ReadMatch `koanf:"match"`
}

// ReadMatch decides whether a read response shows the marker. The zero value means the
// body contains the nonce.
type ReadMatch struct {
	Contains string `koanf:"contains"`
	Path     string `koanf:"path"`
	Expr     string `koanf:"expr"`
}

// BackoffCfg shapes propagation polling: start at the poll interval, grow by Factor up to Max.
type BackoffCfg struct {
	Factor float64       `koanf:"factor"`
	Max    time.Duration `koanf:"max"`
}

// decodeRaw reads a reader as a URL string or a full mapping.
func (r *Reader) decodeRaw(d *decoder, path string, raw any) {
	if s, ok := raw.(string); ok {
		r.Request.URL = s
		return
	}
	m, ok := raw.(map[string]any)
	if !ok {
		d.errorf(path, "write a URL, or a mapping with request (and optionally name, match)", "expected a URL or a mapping, got %s", describe(raw))
		return
	}
	d.decodeStruct(path, m, reflect.ValueOf(r).Elem(), nil)
}

func (s *PropagationSpec) applyDefaults(_ *Config, ch *Check) {
	setStr(&s.Write.Method, "POST")
	defaultRequest(&s.Write, ch.Timeout)
	for _, r := range s.Read {
		if r != nil {
			defaultRequest(&r.Request, ch.Timeout)
			setStr(&r.Name, r.Request.URL)
		}
	}
	if s.Cleanup != nil {
		setStr(&s.Cleanup.Method, "DELETE")
		defaultRequest(s.Cleanup, ch.Timeout)
	}
	setDur(&s.Poll, 100*time.Millisecond)
	if s.Backoff.Factor == 0 {
		s.Backoff.Factor = 1.2
	}
	setDur(&s.Backoff.Max, 10*s.Poll)
	setInt(&s.Confirm, 3)
}

func (s *PropagationSpec) validate(v *validator, _ *Check, p string) {
	v.request(p+".write", &s.Write)
	if len(s.Read) == 0 {
		v.errf(p+".read", "list the endpoints that must show the marker", "at least one reader is needed")
	}
	names := map[string]int{}
	for i, r := range s.Read {
		rp := indexPath(p+".read", i)
		if r == nil {
			v.errf(rp, "remove the empty item", "empty reader")
			continue
		}
		v.request(rp+".request", &r.Request)
		r.Match.validate(v, rp+".match")
		if j, dup := names[r.Name]; dup {
			v.errf(rp+".name", "give each reader its own name (name: replica-b); a reader's name defaults to its URL",
				"%q is already the name of read[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
	}
	s.Match.validate(v, p+".match")
	v.servedVersion(p+".served_version", s.ServedVersion)
	if s.Cleanup != nil {
		v.request(p+".cleanup", s.Cleanup)
	}
	if s.Poll < 10*time.Millisecond {
		v.errf(p+".poll", "poll every 10ms or slower", "%s is too fast", s.Poll)
	}
	if s.Backoff.Factor < 1 || s.Backoff.Factor > 4 {
		v.errf(p+".backoff.factor", "use 1 (no backoff) to 4", "%g is out of range", s.Backoff.Factor)
	}
	if s.Confirm < 1 || s.Confirm > 100 {
		v.errf(p+".confirm", "use 1 (the first read that shows it) to 100; at least the number of backends behind a balanced reader",
			"%d is out of range", s.Confirm)
	}
	if s.Backoff.Max < s.Poll {
		v.errf(p+".backoff.max", fmt.Sprintf("use at least poll (%s); it caps how far polling slows down", s.Poll),
			"%s is shorter than poll", s.Backoff.Max)
	}
}

func (m ReadMatch) validate(v *validator, p string) {
	if countSet(m.Contains != "", m.Path != "", m.Expr != "") > 1 {
		v.errf(p, "use one of contains, path or expr", "more than one way to match is set")
	}
}
