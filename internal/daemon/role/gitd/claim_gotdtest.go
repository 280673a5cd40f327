//go:build gotdtest

package gitd

import "os"

// claimedAccount is, in a test build, the account in
// $GOTD_TEST_GITD_ACCOUNT: what a gitd taken over would claim, which
// the parent must refuse.
func claimedAccount() string { return os.Getenv("GOTD_TEST_GITD_ACCOUNT") }
