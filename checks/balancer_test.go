package checks

import (
	"testing"

	"github.com/vigil-monitor/vigil/internal/vigiltest"
)

// newL4Balancer starts a loopback connection-level balancer (vigiltest.Balancer) that
// takes the backends in turn: a connection stays on its backend, also once that backend
// has left the rotation (draining).
func newL4Balancer(t *testing.T, backends ...string) *vigiltest.Balancer {
	t.Helper()
	return vigiltest.NewBalancer(t, false, backends...)
}
