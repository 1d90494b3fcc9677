package configs

import (
	"reflect"
	"slices"
	"strings"
)

// A written 0. The defaults are applied to what is zero, so a key whose default is not 0
// took a written 0 for "leave it out" without a word: `timeout: 0s` (meant as no timeout)
// ran with 10s, `concurrency: 0` with 32. The decoder looks every 0 the file or an
// override writes up in zeroRules, by the struct the key belongs to: it refuses it with
// the rule's fix, or, where 0 means something, keeps it and records it (Config.zeros) so
// that the defaults leave it in place.

// zeroRule is what a written 0 of one key does.
type zeroRule struct {
	typ reflect.Type
	key string
	// doc is the key as docs/CONFIG.md's "A written 0" names it.
	doc string
	// def is what the key left out takes: its default, or where it takes it from.
	def string
	// use, for a refused 0, says what to write instead; means, for a 0 that is kept,
	// says what it does.
	use, means string
}

// fix is the fix of a refused 0: the default, and the values the key takes; "" for a 0
// that is kept.
func (r *zeroRule) fix() string {
	if r.use == "" {
		return ""
	}
	return "leave the key out for " + r.def + ", or " + r.use
}

// zeroRules lists every key whose written 0 is refused or means something other than
// the default. A key not in it has 0 as its default (or no default), or refuses 0 in its
// own validation.
var zeroRules = []zeroRule{
	{typ: reflect.TypeFor[Agent](), key: "concurrency", doc: "`agent.concurrency`", def: "the default 32", use: "use 1 or more"},
	{typ: reflect.TypeFor[Agent](), key: "browser_concurrency", doc: "`agent.browser_concurrency`", def: "the default 2", use: "use 1 or more"},
	{typ: reflect.TypeFor[Agent](), key: "max_connections", doc: "`agent.max_connections`", def: "the default 512", use: "use 32 or more"},
	{typ: reflect.TypeFor[Agent](), key: "shutdown_grace", doc: "`agent.shutdown_grace`", def: "the default 10s", use: "use 1s to 1h"},
	{typ: reflect.TypeFor[Agent](), key: "heartbeat", doc: "`agent.heartbeat`", def: "the default 10s", use: "use 100ms to 5m"},
	{typ: reflect.TypeFor[Agent](), key: "outbox_lease", doc: "`agent.outbox_lease`", def: "the default 30s", use: "use 1s to 10m"},
	{typ: reflect.TypeFor[Store](), key: "retention", doc: "`store.retention`", def: "the default 168h", use: "keep at least 1h of history"},
	{typ: reflect.TypeFor[Store](), key: "max_size", doc: "`store.max_size`", def: "the default 1GiB (SQLite; PostgreSQL takes no max_size)", use: "use at least 1MiB"},

	{typ: reflect.TypeFor[Defaults](), key: "every", doc: "`defaults.every`", def: "the default 1m", use: "use 1s or more"},
	{typ: reflect.TypeFor[Defaults](), key: "timeout", doc: "`defaults.timeout`", def: "the default 10s", use: "give a positive duration such as 30s; a check always has a timeout"},
	{typ: reflect.TypeFor[Defaults](), key: "failure_threshold", doc: "`defaults.failure_threshold`", def: "the default 2", use: "use 1 or more"},
	{typ: reflect.TypeFor[Defaults](), key: "success_threshold", doc: "`defaults.success_threshold`", def: "the default 1", use: "use 1 or more"},
	{typ: reflect.TypeFor[Defaults](), key: "repeat_interval", doc: "`defaults.repeat_interval`", def: "no reminders", means: "no reminders (the default)"},
	{typ: reflect.TypeFor[Check](), key: "every", doc: "`checks[].every`", def: "defaults.every", use: "use 1s or more"},
	{typ: reflect.TypeFor[Check](), key: "timeout", doc: "`checks[].timeout`", def: "defaults.timeout", use: "give a positive duration such as 30s; a check always has a timeout"},
	{typ: reflect.TypeFor[Check](), key: "failure_threshold", doc: "`checks[].failure_threshold`", def: "defaults.failure_threshold", use: "use 1 or more"},
	{typ: reflect.TypeFor[Check](), key: "success_threshold", doc: "`checks[].success_threshold`", def: "defaults.success_threshold", use: "use 1 or more"},
	{typ: reflect.TypeFor[Check](), key: "repeat_interval", doc: "`checks[].repeat_interval`", def: "defaults.repeat_interval", means: "no reminders for this check, whatever defaults.repeat_interval says"},

	{typ: reflect.TypeFor[Request](), key: "timeout", doc: "`request.timeout`", def: "the check's timeout", use: "give a positive duration up to it"},
	{typ: reflect.TypeFor[Request](), key: "max_body_bytes", doc: "`request.max_body_bytes`", def: "the default 1048576 (1MiB)", use: "give a positive number of bytes"},
	{typ: reflect.TypeFor[BrowserSpec](), key: "navigation_timeout", doc: "`navigation_timeout` (browser)", def: "the check's timeout", use: "give a positive duration up to it"},
	{typ: reflect.TypeFor[Viewport](), key: "width", doc: "`viewport.width` (browser)", def: "the default 1280", use: "use 100 to 7680"},
	{typ: reflect.TypeFor[Viewport](), key: "height", doc: "`viewport.height` (browser)", def: "the default 800", use: "use 100 to 4320"},
	{typ: reflect.TypeFor[DNSSpec](), key: "query_timeout", doc: "`query_timeout` (dns)", def: "2s (the check's timeout if shorter)", use: "give a positive duration up to the check's timeout"},
	{typ: reflect.TypeFor[DNSSpec](), key: "poll", doc: "`poll` (dns)", def: "the default 1s", use: "use 10ms or more"},
	{typ: reflect.TypeFor[FleetSpec](), key: "concurrency", doc: "`concurrency` (fleet)", def: "the default 16", use: "use 1 to 256"},
	{typ: reflect.TypeFor[FleetHealth](), key: "timeout", doc: "`health.timeout` (fleet)", def: "5s (half the check's timeout if shorter)", use: "give a positive duration up to the check's timeout"},
	{typ: reflect.TypeFor[LogscanSpec](), key: "window", doc: "`window` (logscan)", def: "the default 5m", use: "give a positive duration such as 10m"},
	{typ: reflect.TypeFor[LogscanSpec](), key: "max_bytes", doc: "`max_bytes` (logscan)", def: "the default 67108864 (64MiB)", use: "give a positive number of bytes"},
	{typ: reflect.TypeFor[PromQLSpec](), key: "window", doc: "`window` (promql)", def: "the default 5m", use: "use 1s or more"},
	{typ: reflect.TypeFor[PropagationSpec](), key: "poll", doc: "`poll` (propagation)", def: "the default 100ms", use: "use 10ms or more"},
	{typ: reflect.TypeFor[BackoffCfg](), key: "factor", doc: "`backoff.factor` (propagation)", def: "the default 1.2", use: "use 1 (no backoff) to 4"},
	{typ: reflect.TypeFor[BackoffCfg](), key: "max", doc: "`backoff.max` (propagation)", def: "ten times poll", use: "use at least poll"},
	{typ: reflect.TypeFor[SLASpec](), key: "requests", doc: "`requests` (sla)", def: "the default 100", use: "use 1 or more"},
	{typ: reflect.TypeFor[SLASpec](), key: "concurrency", doc: "`concurrency` (sla)", def: "the default 10", use: "use 1 to 1000"},
	{typ: reflect.TypeFor[SLASpec](), key: "max_duration", doc: "`max_duration` (sla)", def: "the check's timeout", use: "give a positive duration up to it"},
	{typ: reflect.TypeFor[WebSocketSpec](), key: "max_message_bytes", doc: "`max_message_bytes` (websocket)", def: "the default 1MiB", use: "give a positive size such as 4MiB"},

	{typ: reflect.TypeFor[Verify](), key: "interval", doc: "`services.NAME.verify.interval`", def: "the default 5s", use: "use 100ms or more"},
	{typ: reflect.TypeFor[Verify](), key: "count", doc: "`services.NAME.verify.count`", def: "the default 6", use: "use 1 or more rounds"},
	{typ: reflect.TypeFor[Verify](), key: "visitors", doc: "`services.NAME.verify.visitors`", def: "the default 4", use: "use 1 to 20"},
	{typ: reflect.TypeFor[Verify](), key: "baseline_runs", doc: "`services.NAME.verify.baseline_runs`", def: "the default 5", use: "use 1 to 1000"},
	{typ: reflect.TypeFor[Locations](), key: "fail", doc: "`locations.fail`", def: "the default 1", use: "use a number of failing locations, e.g. 2"},
	{typ: reflect.TypeFor[Locations](), key: "min", doc: "`locations.min`", def: "every location verifying the deploy", means: "every location verifying the deploy (the default)"},
	{typ: reflect.TypeFor[Locations](), key: "wait", doc: "`locations.wait`", def: "the default 15s", means: "no wait: a location that has finished gives the verdict with the answers there are"},
	{typ: reflect.TypeFor[Quorum](), key: "fail", doc: "`services.NAME.verify.locations.fail`", def: "locations.fail", use: "use a number of failing locations, e.g. 2"},
	{typ: reflect.TypeFor[Quorum](), key: "min", doc: "`services.NAME.verify.locations.min`", def: "locations.min", means: "every location verifying the deploy, whatever locations.min says"},
	{typ: reflect.TypeFor[Quorum](), key: "wait", doc: "`services.NAME.verify.locations.wait`", def: "locations.wait", means: "no wait, whatever locations.wait says"},

	{typ: reflect.TypeFor[Notifier](), key: "timeout", doc: "`notifiers.NAME.timeout`", def: "the default 10s (30s for slack and email)", use: "give a positive duration up to 5m"},
	{typ: reflect.TypeFor[Notifier](), key: "max_attempts", doc: "`notifiers.NAME.max_attempts`", def: "the default 8", use: "use 1 to 50"},
	{typ: reflect.TypeFor[Notifier](), key: "port", doc: "`notifiers.NAME.port`", def: "the default 587", use: "give the SMTP server's port"},
	{typ: reflect.TypeFor[Notifier](), key: "alert_ttl", doc: "`notifiers.NAME.alert_ttl`", def: "the default 1h", use: "use 1m to 168h"},
}

// zeroRuleOf is the rule of key in struct t, or nil.
func zeroRuleOf(t reflect.Type, key string) *zeroRule {
	i := slices.IndexFunc(zeroRules, func(r zeroRule) bool { return r.typ == t && r.key == key })
	if i < 0 {
		return nil
	}
	return &zeroRules[i]
}

// writtenZero handles a 0 written at path, a key of struct t: refused, or kept and
// recorded.
func (d *decoder) writtenZero(t reflect.Type, path, key string) {
	r := zeroRuleOf(t, key)
	switch {
	case r == nil:
	case r.use != "":
		d.errorf(path, r.fix(), "0 is not a setting of this key: it means neither none nor unlimited")
	default:
		if d.zeros == nil {
			d.zeros = map[string]bool{}
		}
		d.zeros[path] = true
	}
}

// zeroWritten says whether the file or an override wrote path as 0, where 0 is kept.
func (c *Config) zeroWritten(path string) bool { return c.zeros[path] }

// A written null. A key written with no value (`timeout:`, `timeout: ~`, `timeout: null`)
// took its default without a word, like a written 0: the value was to come from a
// template, or was deleted. No key takes null for a setting: an empty list is [], an empty
// mapping {}, and a list left out is not an empty one (a check's notify left out takes
// defaults.notify; notify: [] tells nobody). A ${VAR} that expands to nothing is "", not
// null, and stays the value's own rule's business.

// writtenNull refuses the null written at path, whose value would fill a t. inStruct says
// path is a key of a struct (else an entry of a mapping, or an item of a list); r, when
// the key has a zeroRule, names what the key left out takes.
func (d *decoder) writtenNull(path string, t reflect.Type, inStruct bool, r *zeroRule) {
	const msg = "no value: the key is written empty, ~ or null"
	if strings.HasSuffix(path, "]") {
		d.errorf(path, "give the item its value, or remove the item", "no value: the item is written empty, ~ or null")
		return
	}
	give, def := "give a value", "its default"
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
	case t == secretType:
		def = ""
	case t.Kind() == reflect.Slice:
		give = "give a list ([] for an empty one)"
	case t.Kind() == reflect.Map:
		give = "give a mapping ({} for an empty one)"
	case t.Kind() == reflect.Struct:
		if inStruct {
			// A section whose keys are all commented out (`agent:` and nothing under it)
			// means what {} and leaving it out mean: nothing is lost, so it is not refused.
			return
		}
		give, def = "give its keys ({} for none)", "its defaults"
	}
	switch {
	case !inStruct:
		d.errorf(path, give+", or remove the entry", msg)
		return
	case r != nil:
		def = r.def
	case lastKey(path) == "notify" && strings.HasPrefix(path, "checks["):
		def = "defaults.notify (notify: [] tells nobody)"
	}
	if def == "" {
		d.errorf(path, give+", or remove the key", msg)
		return
	}
	d.errorf(path, give+", or remove the key for "+def, msg)
}
