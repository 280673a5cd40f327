package parent

import (
	"slices"
	"testing"

	"gotd/internal/daemon/role/metrics"
)

// TestMetricsRoles: every role the parent starts has a row in the
// metrics' table of processes.
func TestMetricsRoles(t *testing.T) {
	for _, role := range []string{RoleListen, RoleAuth, RoleSessionRead, RoleSessionWrite, RoleRepoWrite,
		RoleNotify, RoleSSHD, RoleGitD, RoleHTTPD, RoleMetrics, RoleUpkeep} {
		if !slices.Contains(metrics.Roles[:], role) {
			t.Errorf("role %s: not in metrics.Roles", role)
		}
	}
}
