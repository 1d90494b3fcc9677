package configs

import (
	"fmt"
	"time"
)

// KindSLA is a bounded burst of one request, judged by latency percentiles and error rate.
const KindSLA = "sla"

// SLASpec is the sla kind: a bounded burst with latency percentiles and an error rate.
type SLASpec struct {
	Request     Request       `koanf:"request"`
	Requests    int           `koanf:"requests"`
	Concurrency int           `koanf:"concurrency"`
	Rate        float64       `koanf:"rate"`
	MaxDuration time.Duration `koanf:"max_duration"`
	AllowLoad   bool          `koanf:"allow_load"`
	// OKStatus lists the statuses that count as success; default 2xx and 3xx.
	OKStatus []int `koanf:"ok_status"`
	// ServedVersion is where an answer names the version that gave it: in a deploy's
	// verification, answers from another version are left out of the figures.
	ServedVersion *ServedVersion `koanf:"served_version"`
}

// slaMaxRequests is the per-run request cap without allow_load.
const slaMaxRequests = 2000

func (s *SLASpec) applyDefaults(_ *Config, ch *Check) {
	defaultRequest(&s.Request, ch.Timeout)
	setInt(&s.Requests, 100)
	setInt(&s.Concurrency, 10)
	setDur(&s.MaxDuration, ch.Timeout)
}

func (s *SLASpec) validate(v *validator, ch *Check, p string) {
	timeout := ch.Timeout
	v.request(p+".request", &s.Request)
	v.servedVersion(p+".served_version", s.ServedVersion)
	if s.Requests < 1 {
		v.errf(p+".requests", "use 1 or more", "must be at least 1")
	}
	if s.Requests > slaMaxRequests && !s.AllowLoad {
		v.errf(p+".requests", fmt.Sprintf("lower it to %d, or set allow_load: true if this target is meant to take load", slaMaxRequests),
			"%d requests per run is above the safety cap", s.Requests)
	}
	if s.Concurrency < 1 || s.Concurrency > 1000 {
		v.errf(p+".concurrency", "use 1 to 1000", "%d is out of range", s.Concurrency)
	}
	if s.Rate < 0 {
		v.errf(p+".rate", "use a positive number of requests per second, or leave it out", "must not be negative")
	}
	switch {
	case s.MaxDuration <= 0:
		if v.c.written(p + ".max_duration") { // else the check's timeout, said there
			v.errf(p+".max_duration", "use a positive duration such as 10s", "must be positive")
		}
	case s.MaxDuration > timeout:
		v.errf(p+".max_duration", fmt.Sprintf("lower it to the check's timeout (%s) or raise timeout", timeout),
			"%s is longer than the check's timeout, which would cut the burst", s.MaxDuration)
	case s.Rate > 0 && s.Requests > 0:
		if need := time.Duration(float64(s.Requests-1) / s.Rate * float64(time.Second)); need > s.MaxDuration {
			v.errf(p+".max_duration", fmt.Sprintf("raise max_duration (and timeout) above %s, raise rate, or send fewer requests", need.Round(time.Millisecond)),
				"%d requests at %g/s take %s, longer than max_duration %s", s.Requests, s.Rate, need.Round(time.Millisecond), s.MaxDuration)
		}
	}
	v.statuses(p+".ok_status", s.OKStatus)
}
