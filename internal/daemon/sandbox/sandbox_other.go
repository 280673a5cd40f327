//go:build !linux && !openbsd

package sandbox

// Apply does nothing where gotd knows no sandbox; the Report says so.
func Apply(p Policy) (Report, error) {
	return Report{Missing: []string{"sandbox"}}, nil
}
