package agent

import (
	"context"
	"time"

	"github.com/vigil-monitor/vigil/store"
)

// Store is what the agent keeps in its store: store.SQLite for one agent, store.Postgres
// for agents sharing one. It is made of the parts each job of the agent uses.
type Store interface {
	runStore
	deployStore
	outboxStore
	incidentStore
	memberStore
	silenceStore
	healthStore
	statusStore
	beatStore
	savedBoardStore
}

// beatStore keeps the beats heartbeat checks read.
type beatStore interface {
	SaveBeat(ctx context.Context, check string, b *store.Beat) error
	Beats(ctx context.Context, check string, since time.Time) ([]*store.Beat, *store.Beat, error)
	BeatsTaken(ctx context.Context, check string, now time.Time) (store.BeatsTaking, error)
}

// runStore keeps runs and their evidence.
type runStore interface {
	SaveRuns(ctx context.Context, runs []*store.RunRecord) error
	RunByID(ctx context.Context, id int64) (*store.RunRecord, error)
	ArtifactData(ctx context.Context, runID int64, name string) (*store.Artifact, error)
	RecentRuns(ctx context.Context, check string, before time.Time, limit int) ([]*store.RunRecord, error)
	BaselineRuns(ctx context.Context, check, location string, since, before time.Time, limit int) ([]*store.RunRecord, error)
	MeasuredSince(ctx context.Context, key, fingerprint string, now time.Time) (time.Time, error)
	DeployRuns(ctx context.Context, deployID string) ([]*store.RunRecord, error)
	FirstPasses(ctx context.Context, deployIDs []string) (map[string]map[string]time.Time, error)
	LatestRuns(ctx context.Context, location string) ([]*store.RunRecord, error)
	History(ctx context.Context, check string, since time.Time, limit int) ([]store.RunPoint, error)
	RecentFailures(ctx context.Context, limit int) ([]*store.RunRecord, error)
}

// deployStore keeps deploys, their locations' reports and their verdicts.
type deployStore interface {
	CreateDeploy(ctx context.Context, d *store.Deploy, supersede store.Superseder) ([]string, error)
	Deploy(ctx context.Context, id string) (*store.Deploy, error)
	Deploys(ctx context.Context, status string, limit int) ([]*store.Deploy, error)
	ServiceDeploys(ctx context.Context, service string, limit int) ([]*store.Deploy, error)
	ReportLocation(ctx context.Context, deployID string, r *store.LocationReport, decide store.DeployDecider) (*store.Deploy, bool, error)
	LocationReports(ctx context.Context, deployID string) ([]*store.LocationReport, error)
}

// outboxStore keeps the notifications and their delivery.
type outboxStore interface {
	Enqueue(ctx context.Context, entries []*store.OutboxEntry) error
	ClaimOutbox(ctx context.Context, agent string, now time.Time, lease time.Duration, limit int, skip []string) ([]*store.OutboxEntry, error)
	RenewClaim(ctx context.Context, id int64, agent string, now time.Time, lease time.Duration) (bool, error)
	ReleaseClaims(ctx context.Context, agent string) (int64, error)
	RecordAttempt(ctx context.Context, a store.OutboxAttempt) error
	NextDue(ctx context.Context, now time.Time, skip []string) (time.Time, error)
	Outbox(ctx context.Context, status string, limit int) ([]*store.OutboxEntry, error)
	OutboxByKey(ctx context.Context, key string) ([]*store.OutboxEntry, error)
	OutboxCounts(ctx context.Context) (map[string]int, error)
	Retry(ctx context.Context, id int64, now time.Time) error
	IncidentNotifiers(ctx context.Context, incident string) ([]string, error)
	AlertState(ctx context.Context, notifier, incident string) (map[string]string, error)
	SaveAlertState(ctx context.Context, notifier, incident string, state map[string]string, now time.Time) error
}

// incidentStore keeps the incidents of scheduled monitoring and membership.
type incidentStore interface {
	Incidents(ctx context.Context) (map[string]*store.Incident, error)
	CheckLocations(ctx context.Context, location string) (map[string]*store.CheckLocation, error)
	CheckLocation(ctx context.Context, check, location string) (*store.CheckLocation, error)
	KeptByOthers(ctx context.Context, location, agent string) (map[string]*store.CheckLocation, error)
	SaveCheckLocation(ctx context.Context, cl *store.CheckLocation, aliveSince time.Time) error
	UpdateIncident(ctx context.Context, u store.IncidentUpdate, decide store.IncidentDecider) (*store.Incident, error)
}

// memberStore keeps the agents sharing the store.
type memberStore interface {
	Heartbeat(ctx context.Context, m *store.Member) (string, error)
	StopMember(ctx context.Context, name, instance string, at time.Time) error
	ForgetMember(ctx context.Context, name string) error
	Members(ctx context.Context) ([]*store.Member, error)
}

// silenceStore keeps silences.
type silenceStore interface {
	AddSilence(ctx context.Context, sl *store.Silence) error
	Silences(ctx context.Context, now time.Time) ([]*store.Silence, error)
	DeleteSilence(ctx context.Context, id string) error
}

// statusStore feeds the status page: its events timeline, overview and check pages,
// and the links a pipeline passes with a deploy.
type statusStore interface {
	AddEvent(ctx context.Context, e *store.Event) error
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
	Overview(ctx context.Context, now time.Time, perService, events int) (*store.Overview, error)
	CheckPage(ctx context.Context, q store.CheckQuery) (*store.CheckPage, error)
	RunBuckets(ctx context.Context, location string, from, to time.Time, width time.Duration, fn func(store.BucketRow)) error
	FirstRun(ctx context.Context) (time.Time, bool, error)
	DeployEvents(ctx context.Context, deployID string) ([]*store.Event, error)
	SetDeployLinks(ctx context.Context, deployID string, links []store.Link) error
	DeployLinks(ctx context.Context, deployID string) ([]store.Link, error)
}

// healthStore is the store's readiness and retention.
type healthStore interface {
	Writable(ctx context.Context) error
	Health(ctx context.Context) error
	Size(ctx context.Context) (int64, error)
	Purge(ctx context.Context, before time.Time) (int64, error)
}

// sizeBounded is a store bounded by store.max_size (SQLite: the file on the agent's disk).
// A PostgreSQL database is bounded by retention and by its own operators.
type sizeBounded interface {
	PurgeToSize(ctx context.Context, limit int64) (int64, int64, error)
}
