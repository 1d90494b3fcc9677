// Package pgtest starts a real, throwaway PostgreSQL for tests and benchmarks: Debian's
// postgresql package (or the binaries in $VIGIL_POSTGRES_BIN), a cluster made by initdb in
// a temporary folder, listening on a free loopback port, never the machine's own cluster.
// As root it runs initdb and postgres as the "postgres" user the package creates
// (PostgreSQL refuses to run as root). Everything it starts stops, and its folder goes, at
// the test's cleanup. Without the binaries tests are skipped, saying how to get them,
// unless VIGIL_REQUIRE_POSTGRES is set (scripts/test and CI set it): then they fail.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// Options shape the cluster.
type Options struct {
	// Durable keeps PostgreSQL's defaults (fsync, synchronous commit, full page writes):
	// benchmarks want them; tests turn them off, which is faster and loses nothing unless
	// the machine itself crashes.
	Durable bool
}

// Server is a running throwaway PostgreSQL.
type Server struct {
	// Port is its loopback port.
	Port int

	bin  string // folder of initdb and postgres
	dir  string // the temporary folder: data, socket
	cred *syscall.Credential
	opts Options
	logs *vigiltest.Buffer
	dbs  atomic.Int64

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// User is the database user of every cluster pgtest makes; it is the superuser, trusted on
// loopback (no password).
const User = "vigil"

// Start starts a cluster for t; it stops at t's cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	s, err := StartServer(o)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: PostgreSQL's log:\n%s", s.Logs())
		}
		s.Close()
	})
	return s
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("pgtest: %v", err)
	if os.Getenv("VIGIL_REQUIRE_POSTGRES") == "" {
		t.Skip(msg + "; set VIGIL_REQUIRE_POSTGRES=1 to make this a failure")
	}
	t.Fatal(msg)
}

// Available says why a cluster cannot start here (nil when it can).
func Available() error {
	_, _, err := binDir()
	if err != nil {
		return err
	}
	_, err = runAs()
	return err
}

// binDir finds initdb and postgres: $VIGIL_POSTGRES_BIN, then Debian's
// /usr/lib/postgresql/<version>/bin (the newest; Debian puts neither on PATH), then PATH.
func binDir() (string, string, error) {
	if d := os.Getenv("VIGIL_POSTGRES_BIN"); d != "" {
		return d, "VIGIL_POSTGRES_BIN", nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, "Debian", nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p), "PATH", nil
		}
	}
	return "", "", errors.New("PostgreSQL's initdb and postgres not found; install Debian's postgresql package (scripts/setup does) or set VIGIL_POSTGRES_BIN to their folder")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// runAs is the user the cluster runs as: nil (this process's) unless this is root, which
// PostgreSQL refuses; then the "postgres" user.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New(`PostgreSQL refuses to run as root and there is no "postgres" user to run it as; install Debian's postgresql package (it creates one) or run the tests as another user`)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// StartServer makes and starts a cluster (for programs; tests use Start). Close stops it
// and removes its folder.
func StartServer(o Options) (*Server, error) {
	bin, _, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vigil-pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, cred: cred, opts: o, logs: &vigiltest.Buffer{}}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := s.command("initdb", "-D", s.data(), "-U", User, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 3 { // the free port can be taken between the probe and the bind
		if s.Port, err = freePort(); err != nil {
			break
		}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	s.Close()
	return nil, lastErr
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	// Pdeathsig: a test binary killed outright does not leave a cluster behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// start runs postgres on s.Port and waits until it takes connections.
func (s *Server) start() error {
	args := []string{"-D", s.data(), "-p", strconv.Itoa(s.Port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + s.dir, "-c", "max_connections=300", "-c", "shared_buffers=32MB"}
	if !s.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("postgres exited during startup: %s", s.Logs())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("postgres on port %d not ready after 30s: %s", s.Port, s.Logs())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the URL of a database on the cluster.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", User, s.Port, database)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("vigil_%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Database creates an empty database for t and returns its URL.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	dsn, err := s.NewDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// Stop shuts PostgreSQL down (fast: open sessions are cut, as in a restart by an operator)
// and waits for it; the cluster stays on disk for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Restart stops PostgreSQL and starts it again on the same port, as a database restarted
// under running agents.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// Close stops PostgreSQL and removes its folder.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// Logs is what PostgreSQL printed so far, for failure messages.
func (s *Server) Logs() string { return strings.TrimSpace(s.logs.String()) }

// One cluster serves every test of a binary that asks for a plain database (Database);
// Main stops it when the tests are done. A cluster takes a second or two to make, and most
// tests need a database, not a server of their own.
var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Database returns the URL of a new, empty database on the test binary's shared cluster,
// starting it on first use. The package's TestMain must call Main.
func Database(t testing.TB) string {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	shared.once.Do(func() { shared.s, shared.err = StartServer(Options{}) })
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.s.Database(t)
}

// Main runs the tests and then stops the shared cluster: func TestMain(m *testing.M) {
// os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.s != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "pgtest: PostgreSQL's log:\n%s\n", shared.s.Logs())
		}
		shared.s.Close()
	}
	return code
}
