package configs

// Several agents: the PostgreSQL store they share (store.pool), how each names itself and
// says it is alive (agent.name, agent.heartbeat), and how the verdicts of their locations
// combine (locations, and services.NAME.verify.locations).

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// StorePool sizes the PostgreSQL connection pool of store.driver: postgres.
type StorePool struct {
	MaxConns        int           `koanf:"max_conns"`
	MinConns        int           `koanf:"min_conns"`
	MaxConnLifetime time.Duration `koanf:"max_conn_lifetime"`
	MaxConnIdleTime time.Duration `koanf:"max_conn_idle_time"`
	ConnectTimeout  time.Duration `koanf:"connect_timeout"`
}

// Quorum is how the locations verifying a deploy combine into its verdict.
type Quorum struct {
	// Min is how many locations must give an answer (passed or failed) for a verdict; 0
	// means every location verifying the deploy. Fewer answers by the end of the wait make
	// the verdict inconclusive, naming the locations that gave none.
	Min int `koanf:"min"`
	// Fail is how many failing locations fail the deploy (and, under locations:, open a
	// scheduled check's incident). Fewer failing locations do not.
	Fail int `koanf:"fail"`
	// Wait is how long a location that has finished its verification waits for the others
	// before the verdict is given with the answers there are.
	Wait time.Duration `koanf:"wait"`
}

// Locations is the top-level locations block: the quorum every service's verification
// uses unless its verify.locations says otherwise, and the one scheduled incidents use.
type Locations struct {
	Min  int           `koanf:"min"`
	Fail int           `koanf:"fail"`
	Wait time.Duration `koanf:"wait"`
	// Notify are the notifiers told when an agent or a whole location stops reporting;
	// default defaults.notify.
	Notify []string `koanf:"notify"`
}

// Quorum is the block's quorum.
func (l Locations) Quorum() Quorum { return Quorum{Min: l.Min, Fail: l.Fail, Wait: l.Wait} }

// Defaults of several agents.
const (
	DefaultHeartbeat     = 10 * time.Second
	DefaultOutboxLease   = 30 * time.Second
	DefaultLocationsWait = 15 * time.Second
)

// SilentAfter is how long an agent may go without a heartbeat before it counts as silent:
// three missed heartbeats.
func SilentAfter(heartbeat time.Duration) time.Duration { return 3 * heartbeat }

// ServiceQuorum is the quorum of a service's deploys: its verify.locations, each key
// unset there taken from the top-level locations block.
func (c *Config) ServiceQuorum(s *Service) Quorum {
	q := c.Locations.Quorum()
	if o := s.Verify.Locations; o != nil {
		// A written min: 0 or wait: 0s means every location or no wait (zero.go).
		at := "services." + s.Name + ".verify.locations."
		if o.Min != 0 || c.zeroWritten(at+"min") {
			q.Min = o.Min
		}
		if o.Fail != 0 {
			q.Fail = o.Fail
		}
		if o.Wait != 0 || c.zeroWritten(at+"wait") {
			q.Wait = o.Wait
		}
	}
	return q
}

func (c *Config) defaultLocations() {
	setDur(&c.Agent.Heartbeat, DefaultHeartbeat)
	setDur(&c.Agent.OutboxLease, DefaultOutboxLease)
	setInt(&c.Locations.Fail, 1)
	if !c.zeroWritten("locations.wait") { // a written 0s is no wait (zero.go)
		setDur(&c.Locations.Wait, DefaultLocationsWait)
	}
	if c.Locations.Notify == nil {
		c.Locations.Notify = append([]string(nil), c.Defaults.Notify...)
	}
}

var agentNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$`)

// locations validates what several agents share: the store's pool, the agent's name and
// heartbeat, and the quorums.
func (v *validator) locations() {
	c := v.c
	s := c.Store
	if s.Driver == DriverPostgres {
		dsn := strings.TrimSpace(s.DSN)
		switch {
		case dsn == "":
			v.errf("store.dsn", "set it to postgres://USER@HOST:5432/DATABASE (the password from ${VAR} or PGPASSWORD)", "missing: store.driver postgres needs a database")
		case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") && !strings.Contains(dsn, "="):
			v.errf("store.dsn", "write postgres://USER@HOST:5432/DATABASE or host=HOST dbname=DATABASE user=USER", "%q is not a PostgreSQL connection string", RedactURL(dsn))
		}
		if s.MaxSize != 0 {
			v.errf("store.max_size", "remove it: on PostgreSQL bound the history with store.retention, and the database's size with the database's own monitoring",
				"applies to the SQLite file only")
		}
		p := s.Pool
		if p.MaxConns < 0 || p.MinConns < 0 || p.MaxConns > 1000 {
			v.errf("store.pool", "use 0 (pgx's default) or a number of connections, e.g. max_conns: 10", "connection counts must be 0 to 1000")
		}
		if p.MaxConns > 0 && p.MinConns > p.MaxConns {
			v.errf("store.pool.min_conns", "keep it at most max_conns", "%d is more than max_conns %d", p.MinConns, p.MaxConns)
		}
		if p.MaxConnLifetime < 0 || p.MaxConnIdleTime < 0 || p.ConnectTimeout < 0 {
			v.errf("store.pool", "use positive durations, e.g. connect_timeout: 5s", "durations must not be negative")
		}
	} else if s.Pool != (StorePool{}) {
		v.errf("store.pool", "remove it, or set store.driver: postgres", "applies to store.driver postgres only")
	}
	a := c.Agent
	if a.Name != "" && !agentNameRE.MatchString(a.Name) {
		v.errf("agent.name", "use letters, digits and - _ . : / @, at most 128 characters, e.g. host-1/eu-west", "%q is not a valid agent name", a.Name)
	}
	if strings.TrimSpace(a.Location) == "" || strings.ContainsAny(a.Location, ",\n") || len(a.Location) > 63 {
		v.errf("agent.location", "name the site in a word, e.g. eu-west", "%q is not a valid location", a.Location)
	}
	if a.Heartbeat < 100*time.Millisecond || a.Heartbeat > 5*time.Minute {
		v.errf("agent.heartbeat", "use 100ms to 5m, e.g. 10s", "%s is out of range", a.Heartbeat)
	}
	if a.OutboxLease < time.Second || a.OutboxLease > 10*time.Minute {
		v.errf("agent.outbox_lease", "use 1s to 10m, e.g. 30s", "%s is out of range", a.OutboxLease)
	}
	v.quorum("locations", c.Locations.Quorum(), c.Locations.Quorum())
	for i, n := range c.Locations.Notify {
		v.notifier(indexPath("locations.notify", i), n)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Services)) {
		if svc := c.Services[name]; svc != nil && svc.Verify.Locations != nil {
			v.quorum("services."+name+".verify.locations", *svc.Verify.Locations, c.ServiceQuorum(svc))
		}
	}
}

// quorum checks the keys written at p, and the quorum they make with the ones inherited.
func (v *validator) quorum(p string, q, effective Quorum) {
	if q.Min < 0 || q.Min > 100 {
		v.errf(p+".min", "use 0 (every location verifying the deploy) or a number of locations, e.g. 2", "%d is out of range", q.Min)
	}
	if q.Fail < 0 || q.Fail > 100 {
		v.errf(p+".fail", "use a number of failing locations, e.g. 2", "%d is out of range", q.Fail)
	}
	if effective.Min > 0 && effective.Fail > effective.Min {
		v.errf(p, "keep fail at most min", "fail %d is more than min %d: a verdict from min locations could never fail the deploy",
			effective.Fail, effective.Min)
	}
	if q.Wait < 0 || q.Wait > time.Hour {
		v.errf(p+".wait", "use 0s to 1h, e.g. 15s", "%s is out of range", q.Wait)
	}
}
