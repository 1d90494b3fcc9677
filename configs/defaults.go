package configs

import (
	"path/filepath"
	"time"
)

// DefaultConsecutiveErrorLimit is Argo Rollouts' default: four errors in a row end a
// verification as inconclusive.
const DefaultConsecutiveErrorLimit = 4

func (c *Config) applyDefaults() {
	a := &c.Agent
	setStr(&a.Listen, DefaultListen)
	setStr(&a.Location, "local")
	setInt(&a.Concurrency, DefaultConcurrency)
	setInt(&a.BrowserConcurrency, DefaultBrowserConc)
	setDur(&a.ShutdownGrace, 10*time.Second)
	setInt(&a.MaxConnections, DefaultMaxConnections)

	setStr(&c.Store.Driver, "sqlite")
	if c.Store.Driver == DriverSQLite {
		setStr(&c.Store.DSN, "vigil.db")
		if c.Store.DSN != ":memory:" && !filepath.IsAbs(c.Store.DSN) {
			c.Store.DSN = filepath.Join(c.Dir, c.Store.DSN)
		}
		if c.Store.MaxSize == 0 {
			c.Store.MaxSize = DefaultMaxSize
		}
	}
	setDur(&c.Store.Retention, DefaultRetention)

	c.defaultLocations()
	d := &c.Defaults
	setDur(&d.Every, DefaultEvery)
	setDur(&d.Timeout, DefaultTimeout)
	if d.Retries == nil {
		d.Retries = ptr(DefaultRetries)
	}
	setInt(&d.FailureThreshold, DefaultFailureThreshold)
	setInt(&d.SuccessThreshold, DefaultSuccessThreshold)

	for i, ch := range c.Checks {
		if ch == nil {
			continue
		}
		ch.Index = i
		setDur(&ch.Every, d.Every)
		setDur(&ch.Timeout, d.Timeout)
		if ch.Retries == nil {
			ch.Retries = ptr(*d.Retries)
		}
		setInt(&ch.FailureThreshold, d.FailureThreshold)
		setInt(&ch.SuccessThreshold, d.SuccessThreshold)
		setDur(&ch.RepeatInterval, d.RepeatInterval)
		if ch.Notify == nil {
			ch.Notify = append([]string(nil), d.Notify...)
		}
		c.defaultKind(ch)
	}

	for name, s := range c.Services {
		if s == nil {
			s = &Service{}
			c.Services[name] = s
		}
		s.Name = name
		v := &s.Verify
		setDur(&v.Interval, DefaultVerifyInterval)
		setInt(&v.Count, DefaultVerifyCount)
		setInt(&v.BaselineRuns, DefaultBaselineRuns)
		if v.ConsecutiveErrorLimit == nil {
			v.ConsecutiveErrorLimit = ptr(DefaultConsecutiveErrorLimit)
		}
		for _, cn := range s.Checks {
			if ch := c.CheckByName(cn); ch != nil && !contains(ch.Services, name) {
				ch.Services = append(ch.Services, name)
			}
		}
	}

	for name, n := range c.Notifiers {
		if n == nil {
			n = &Notifier{}
			c.Notifiers[name] = n
		}
		n.Name = name
		setDur(&n.Timeout, 10*time.Second)
		setInt(&n.MaxAttempts, 8)
		if n.Type == NotifierPagerDuty {
			setStr(&n.Severity, "critical")
		}
	}
}

// defaultRequest fills a request's defaults; timeout falls back to the check's.
func defaultRequest(r *Request, timeout time.Duration) {
	setStr(&r.Method, "GET")
	if r.Timeout == 0 || r.Timeout > timeout {
		r.Timeout = timeout
	}
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

func (c *Config) defaultKind(ch *Check) {
	switch {
	case ch.HTTP != nil:
		defaultRequest(&ch.HTTP.Request, ch.Timeout)
	case ch.Script != nil:
		for _, st := range ch.Script.Steps {
			if st != nil {
				defaultRequest(&st.Request, ch.Timeout)
			}
		}
	case ch.Browser != nil:
		b := ch.Browser
		setInt(&b.Viewport.Width, 1280)
		setInt(&b.Viewport.Height, 800)
		if b.NavigationTimeout == 0 || b.NavigationTimeout > ch.Timeout {
			b.NavigationTimeout = ch.Timeout
		}
	case ch.Propagation != nil:
		p := ch.Propagation
		setStr(&p.Write.Method, "POST")
		defaultRequest(&p.Write, ch.Timeout)
		for _, r := range p.Read {
			if r != nil {
				defaultRequest(&r.Request, ch.Timeout)
			}
		}
		if p.Cleanup != nil {
			setStr(&p.Cleanup.Method, "DELETE")
			defaultRequest(p.Cleanup, ch.Timeout)
		}
		for _, r := range p.Read {
			if r != nil {
				setStr(&r.Name, r.Request.URL)
			}
		}
		setDur(&p.Poll, 100*time.Millisecond)
		if p.Backoff.Factor == 0 {
			p.Backoff.Factor = 1.2
		}
		setDur(&p.Backoff.Max, 10*p.Poll)
	case ch.SLA != nil:
		s := ch.SLA
		defaultRequest(&s.Request, ch.Timeout)
		setInt(&s.Requests, 100)
		setInt(&s.Concurrency, 10)
		setDur(&s.MaxDuration, ch.Timeout)
	case ch.Logscan != nil:
		setDur(&ch.Logscan.Window, 5*time.Minute)
		setInt(&ch.Logscan.Samples, 5)
		if ch.Logscan.MaxBytes == 0 {
			ch.Logscan.MaxBytes = LogscanMaxBytes
		}
		if f := ch.Logscan.Source.File; f != "" && !filepath.IsAbs(f) {
			ch.Logscan.Source.File = filepath.Join(c.Dir, f)
		}
	case ch.Fleet != nil:
		f := ch.Fleet
		setStr(&f.Health.Path, "/healthz")
		setInt(&f.Concurrency, 16)
		// Half the run at most: an instance that hangs is reported, not the run timed out.
		setDur(&f.Health.Timeout, min(5*time.Second, ch.Timeout/2))
	}
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}

func ptr[T any](v T) *T { return &v }

// Default returns a configuration with no checks and every default applied (what a
// command needs when it runs without a config file, such as vigil demo).
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}
