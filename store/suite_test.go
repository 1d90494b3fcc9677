package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-monitor/vigil/internal/pgtest"
)

// One suite, two drivers: every test written with forEachDriver runs on SQLite and on
// PostgreSQL (a throwaway cluster shared by the package's tests, a database per test).

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testStore is what both stores do, as the tests use it.
type testStore interface {
	Close() error
	SaveRuns(ctx context.Context, runs []*RunRecord) error
	RunByID(ctx context.Context, id int64) (*RunRecord, error)
	ArtifactData(ctx context.Context, runID int64, name string) (*Artifact, error)
	RecentRuns(ctx context.Context, check string, before time.Time, limit int) ([]*RunRecord, error)
	BaselineRuns(ctx context.Context, check, location string, since, before time.Time, limit int) ([]*RunRecord, error)
	LatestRuns(ctx context.Context, location string) ([]*RunRecord, error)
	History(ctx context.Context, check string, since time.Time, limit int) ([]RunPoint, error)
	DeployRuns(ctx context.Context, deployID string) ([]*RunRecord, error)
	FirstPasses(ctx context.Context, deployIDs []string) (map[string]map[string]time.Time, error)
	CountRuns(ctx context.Context) (int64, error)
	Purge(ctx context.Context, before time.Time) (int64, error)
	Size(ctx context.Context) (int64, error)

	CreateDeploy(ctx context.Context, d *Deploy, supersede Superseder) ([]string, error)
	Deploy(ctx context.Context, id string) (*Deploy, error)
	Deploys(ctx context.Context, status string, limit int) ([]*Deploy, error)
	ReportLocation(ctx context.Context, deployID string, r *LocationReport, decide DeployDecider) (*Deploy, bool, error)
	LocationReports(ctx context.Context, deployID string) ([]*LocationReport, error)

	Enqueue(ctx context.Context, entries []*OutboxEntry) error
	ClaimOutbox(ctx context.Context, agent string, now time.Time, lease time.Duration, limit int, skip []string) ([]*OutboxEntry, error)
	RenewClaim(ctx context.Context, id int64, agent string, now time.Time, lease time.Duration) (bool, error)
	ReleaseClaims(ctx context.Context, agent string) (int64, error)
	RecordAttempt(ctx context.Context, a OutboxAttempt) error
	NextDue(ctx context.Context, now time.Time, skip []string) (time.Time, error)
	Outbox(ctx context.Context, status string, limit int) ([]*OutboxEntry, error)
	OutboxByKey(ctx context.Context, key string) ([]*OutboxEntry, error)
	OutboxCounts(ctx context.Context) (map[string]int, error)
	Retry(ctx context.Context, id int64, now time.Time) error

	AlertState(ctx context.Context, notifier, incident string) (map[string]string, error)
	SaveAlertState(ctx context.Context, notifier, incident string, state map[string]string, now time.Time) error
	Incidents(ctx context.Context) (map[string]*Incident, error)
	CheckLocations(ctx context.Context, location string) (map[string]*CheckLocation, error)
	CheckLocation(ctx context.Context, check, location string) (*CheckLocation, error)
	KeptByOthers(ctx context.Context, location, agent string) (map[string]*CheckLocation, error)
	SaveCheckLocation(ctx context.Context, cl *CheckLocation, aliveSince time.Time) error
	UpdateIncident(ctx context.Context, u IncidentUpdate, decide IncidentDecider) (*Incident, error)
	AddSilence(ctx context.Context, sl *Silence) error
	Silences(ctx context.Context, now time.Time) ([]*Silence, error)
	DeleteSilence(ctx context.Context, id string) error

	Heartbeat(ctx context.Context, m *Member) (string, error)
	SaveBeat(ctx context.Context, check string, b *Beat) error
	Beats(ctx context.Context, check string, since time.Time) ([]*Beat, *Beat, error)
	StopMember(ctx context.Context, name, instance string, at time.Time) error
	ForgetMember(ctx context.Context, name string) error
	Members(ctx context.Context) ([]*Member, error)

	DecideDeploy(ctx context.Context, dec *Decision) (bool, error)
	SetDeployLinks(ctx context.Context, deployID string, links []Link) error
	AddEvent(ctx context.Context, e *Event) error
	PurgeEvents(ctx context.Context, before time.Time) (int64, error)
	Overview(ctx context.Context, now time.Time, perService, events int) (*Overview, error)
	CheckPage(ctx context.Context, q CheckQuery) (*CheckPage, error)
	RunBuckets(ctx context.Context, location string, from, to time.Time, width time.Duration, fn func(BucketRow)) error
	FirstRun(ctx context.Context) (time.Time, bool, error)
	SaveBoard(ctx context.Context, b *Board) error
	SaveBoardParts(ctx context.Context, b *Board, write func(put func(part []byte) error) error) error
	SavedBoard(ctx context.Context, agent string) (*Board, error)
	LastRunID(ctx context.Context) (int64, error)
	RunBucketsByID(ctx context.Context, location string, after, upTo int64, from, to time.Time, width time.Duration, fn func(BucketRow)) error

	Health(ctx context.Context) error
	Writable(ctx context.Context) error
	MeasuredSince(ctx context.Context, key, fingerprint string, now time.Time) (time.Time, error)

	self() *common
}

// self reaches the shared part of either store (its database, its health) from a test.
func (s *common) self() *common { return s }

// driver makes and opens stores of one kind.
type driver struct {
	name string
	// where returns the location of a new, empty store: a file path or a DSN.
	where func(t testing.TB) string
	open  func(ctx context.Context, where string) (testStore, error)
}

var drivers = []driver{
	{name: "sqlite",
		where: func(t testing.TB) string { return filepath.Join(t.TempDir(), "vigil.db") },
		open:  func(ctx context.Context, path string) (testStore, error) { return Open(ctx, path) }},
	{name: "postgres",
		where: func(t testing.TB) string { return pgtest.Database(t) },
		open: func(ctx context.Context, dsn string) (testStore, error) {
			return OpenPostgres(ctx, dsn, PoolOptions{MaxConns: 8})
		}},
}

// forEachDriver runs test once per driver, as parallel subtests.
func forEachDriver(t *testing.T, test func(t *testing.T, d driver)) {
	t.Helper()
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			test(t, d)
		})
	}
}

// openAt opens the store at where; it is closed at cleanup.
func (d driver) openAt(t testing.TB, where string) testStore {
	t.Helper()
	s, err := d.open(context.Background(), where)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fresh opens a new, empty store.
func (d driver) fresh(t testing.TB) testStore {
	t.Helper()
	return d.openAt(t, d.where(t))
}
