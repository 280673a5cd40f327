package wire

import (
	"errors"
	"fmt"
)

// ErrOverBudget is wrapped in the error of a list over its Budget.
var ErrOverBudget = errors.New("wire: over the request's bounds")

// Budget bounds one list a client sends (its haves, its push commands,
// its capabilities …) in lines and in bytes together, so that what is
// kept of it is bounded whatever the length of each line. A negative
// bound is no bound. The zero Budget refuses every line.
//
// Take is called for each line before anything of the line is kept:
// the list is refused at the first line over either bound.
type Budget struct {
	// Prefix starts the message to the client ("upload-pack: "), What
	// names the list, plural ("haves").
	Prefix, What string
	Lines, Bytes int

	lines, bytes int
}

// Take counts one line of n bytes. Over either bound it returns an
// *Error for the client that names the list and both bounds, never the
// client's bytes; the budget then stays spent.
func (b *Budget) Take(n int) error {
	b.lines++
	b.bytes += n
	if Exceeds(b.lines, b.Lines) || Exceeds(b.bytes, b.Bytes) {
		e := Errorf("%stoo many %s (limit %s lines / %s)", b.Prefix, b.What, count(b.Lines), Size(int64(b.Bytes)))
		e.Err = ErrOverBudget
		return e
	}
	return nil
}

// Count returns the lines taken so far.
func (b *Budget) Count() int { return b.lines }

// count formats a bound of lines; a negative one is unbounded.
func count(n int) string {
	if n < 0 {
		return "no"
	}
	return fmt.Sprint(n)
}

// Size formats a size in bytes as the messages to clients and the
// manual pages state limits: in GiB, MiB or KiB when it is a whole
// number of them.
func Size(n int64) string {
	switch {
	case n < 0:
		return "no limit"
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
