package policy

import "testing"

func TestHidden(t *testing.T) {
	h := Hidden{"refs/internal/x/", "refs/tags/secret/"}
	for name, want := range map[string]bool{
		"refs/internal/x/a": true, "refs/internal/x": true, "refs/internal": true, "refs/tags/secret/v1": true,
		"refs/tags/secret": true, "refs/tags": true, "refs": true, "refs/internal/xy": false, "refs/internal/y": false,
		"refs/heads/main": false, "refs/tags/secretly": false,
	} {
		if got := h.Has(name); got != want {
			t.Errorf("Has(%s) = %v, want %v", name, got, want)
		}
	}
	if Hidden(nil).Func() != nil || h.Func() == nil {
		t.Error("Func")
	}
}
