package wire

import "testing"

func TestBudget(t *testing.T) {
	cases := []struct {
		name  string
		b     Budget
		lines []int
		fail  int // index of the first refused line, -1 for none
		want  string
	}{
		{"within", Budget{What: "haves", Lines: 3, Bytes: 30}, []int{10, 10, 10}, -1, ""},
		{"lines", Budget{What: "haves", Lines: 2, Bytes: 100}, []int{1, 1, 1}, 2, "too many haves (limit 2 lines / 100 bytes)"},
		{"bytes", Budget{Prefix: "upload-pack: ", What: "ref-prefix lines", Lines: 10, Bytes: 4 << 20}, []int{3 << 20, 1 << 20, 1}, 2,
			"upload-pack: too many ref-prefix lines (limit 10 lines / 4 MiB)"},
		{"no bounds", Budget{What: "x", Lines: -1, Bytes: -1}, []int{1 << 30, 1 << 30}, -1, ""},
		{"zero refuses", Budget{What: "x"}, []int{0}, 0, "too many x (limit 0 lines / 0 bytes)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i, n := range c.lines {
				err := c.b.Take(n)
				if (err != nil) != (i >= c.fail && c.fail >= 0) {
					t.Fatalf("line %d: %v", i, err)
				}
				if err != nil && ClientMessage(err) != c.want {
					t.Errorf("got %q; want %q", ClientMessage(err), c.want)
				}
			}
		})
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{-1: "no limit", 0: "0 bytes", 1000: "1000 bytes", 1024: "1 KiB", 3 << 20: "3 MiB",
		4608 << 10: "4608 KiB", 1 << 30: "1 GiB", 1<<30 + 1: "1073741825 bytes"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q; want %q", n, got, want)
		}
	}
}
