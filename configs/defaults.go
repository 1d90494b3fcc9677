package configs

import (
	"path/filepath"
	"time"
)

// applyDefaults fills what the file left unset, section by section.
func (c *Config) applyDefaults() {
	a := &c.Agent
	setStr(&a.Listen, defaultListen)
	setStr(&a.Location, "local")
	setInt(&a.Concurrency, defaultConcurrency)
	setInt(&a.BrowserConcurrency, defaultBrowserConcurrency)
	setDur(&a.ShutdownGrace, 10*time.Second)
	setInt(&a.MaxConnections, defaultMaxConnections)

	setStr(&c.Store.Driver, "sqlite")
	if c.Store.Driver == DriverSQLite {
		setStr(&c.Store.DSN, "vigil.db")
		if c.Store.DSN != ":memory:" && !filepath.IsAbs(c.Store.DSN) {
			c.Store.DSN = filepath.Join(c.Dir, c.Store.DSN)
		}
		if c.Store.MaxSize == 0 {
			c.Store.MaxSize = defaultMaxSize
		}
	}
	setDur(&c.Store.Retention, defaultRetention)

	c.defaultLocations()
	d := &c.Defaults
	setDur(&d.Every, defaultEvery)
	setDur(&d.Timeout, defaultTimeout)
	if d.Retries == nil {
		d.Retries = ptr(defaultRetries)
	}
	setInt(&d.FailureThreshold, defaultFailureThreshold)
	if d.NoData == "" {
		d.NoData = NoDataIgnore
	}
	if d.FailureWindow == nil {
		d.FailureWindow = ptr(0)
	}
	setInt(&d.SuccessThreshold, defaultSuccessThreshold)

	for i, ch := range c.Checks {
		if ch != nil {
			ch.applyDefaults(c, i)
		}
	}
	for name, s := range c.Services {
		if s == nil {
			s = &Service{}
			c.Services[name] = s
		}
		s.applyDefaults(c, name)
	}
	for name, n := range c.Notifiers {
		if n == nil {
			n = &Notifier{}
			c.Notifiers[name] = n
		}
		n.applyDefaults(name)
	}
}

// Default returns a configuration with no checks and every default applied (what a
// command needs when it runs without a config file, such as vigil demo).
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}
