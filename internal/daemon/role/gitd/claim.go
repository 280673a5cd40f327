//go:build !gotdtest

package gitd

// claimedAccount is the account gitd claims for its clients: none, as
// git:// has no authentication.
func claimedAccount() string { return "" }
