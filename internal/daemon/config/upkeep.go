package config

import (
	"time"
)

// Defaults of the upkeep directives: a repository is tidied once a push
// leaves it with more than DefaultUpkeepPacks packs,
// DefaultUpkeepLoose loose objects or DefaultUpkeepLooseRefs loose
// references, at most once per DefaultUpkeepInterval, and unreachable
// objects are kept for DefaultUpkeepGrace (two weeks, as C Git's
// gc.pruneExpire).
const (
	DefaultUpkeepPacks     = 8
	DefaultUpkeepLoose     = 1000
	DefaultUpkeepLooseRefs = 50
	DefaultUpkeepInterval  = time.Hour
	DefaultUpkeepGrace     = 14 * 24 * time.Hour
	// MaxUpkeepCount bounds the packs and loose-objects thresholds.
	MaxUpkeepCount = 1 << 24
	// MinUpkeepGrace is the shortest grace period a configuration may
	// set: a push in flight has written its objects within it.
	MinUpkeepGrace = time.Hour
	// maxUpkeepPeriod bounds the interval and the grace period (ten
	// years).
	maxUpkeepPeriod = 10 * 365 * 24 * time.Hour
)

// Upkeep is an "upkeep" directive's settings, top-level or in a
// repository block. A zero field is not set: a repository's settings
// fall back on the top-level ones, and those on the defaults
// (UpkeepFor).
type Upkeep struct {
	// Off is "upkeep off": the repository is left to the operator
	// (gotadmin cleanup). On is "upkeep on", or a repository's upkeep
	// block, overriding a top-level "upkeep off".
	Off, On bool
	// Packs, Loose and LooseRefs are the thresholds: upkeep runs
	// after a push that leaves more packs, loose objects or loose
	// references than these, and packs the references when there are
	// more than LooseRefs loose.
	Packs, Loose, LooseRefs int
	// Interval is the least time between two automatic runs on one
	// repository.
	Interval time.Duration
	// Grace is how long unreachable objects are kept.
	Grace time.Duration
	// Line is the line of the directive, 0 if absent.
	Line int
}

// UpkeepFor returns r's upkeep settings resolved: its own, then the
// top-level ones, then the defaults. Off reports that upkeep does not
// run automatically; gotctl upkeep runs it all the same.
func (c *Config) UpkeepFor(r *Repository) Upkeep {
	u := Upkeep{Packs: DefaultUpkeepPacks, Loose: DefaultUpkeepLoose, LooseRefs: DefaultUpkeepLooseRefs, Interval: DefaultUpkeepInterval, Grace: DefaultUpkeepGrace}
	for _, s := range []Upkeep{c.Upkeep, r.Upkeep} {
		switch {
		case s.Off:
			u.Off = true
		case s.On:
			u.Off = false
		}
		if s.Packs != 0 {
			u.Packs = s.Packs
		}
		if s.Loose != 0 {
			u.Loose = s.Loose
		}
		if s.LooseRefs != 0 {
			u.LooseRefs = s.LooseRefs
		}
		if s.Interval != 0 {
			u.Interval = s.Interval
		}
		if s.Grace != 0 {
			u.Grace = s.Grace
		}
	}
	u.On, u.Line = !u.Off, 0
	return u
}

// upkeep parses "upkeep off", "upkeep on" or "upkeep { option ... }"
// into u; the current token is the word after "upkeep". A repository's
// block turns upkeep on for it unless it says off.
func (p *parser) upkeep(u *Upkeep, line int) {
	if u.Line != 0 {
		p.errorf(line, "upkeep given twice (first on line %d)", u.Line)
	}
	u.Line = line
	switch {
	case p.is("off"):
		p.advance()
		u.Off = true
		return
	case p.is("on"):
		p.advance()
		u.On = true
		return
	case !p.punct("{"):
		p.fail("syntax error: expected 'on', 'off' or '{' after upkeep, found %v", p.tok)
	}
	u.On = true
	p.block(func() { p.upkeepOption(u) })
	if u.Off {
		u.On = false
	}
}

// upkeepOption parses a line of an upkeep block.
func (p *parser) upkeepOption(u *Upkeep) {
	line := p.tok.line
	switch {
	case p.is("off"):
		p.advance()
		u.Off = true
	case p.is("packs"):
		p.advance()
		u.Packs = p.upkeepCount(line, "packs")
	case p.is("loose"):
		p.advance()
		if p.is("references") {
			p.advance()
			u.LooseRefs = p.upkeepCount(line, "loose references")
			break
		}
		p.expect("objects")
		u.Loose = p.upkeepCount(line, "loose objects")
	case p.is("interval"):
		p.advance()
		u.Interval = p.period(line, "upkeep interval", time.Minute)
	case p.is("grace"):
		p.advance()
		u.Grace = p.period(line, "upkeep grace period", MinUpkeepGrace)
	default:
		p.fail("syntax error: unexpected %v in upkeep options", p.tok)
	}
}

// upkeepCount parses a threshold: a number from 1 to MaxUpkeepCount.
func (p *parser) upkeepCount(line int, what string) int {
	if p.tok.kind != tokNumber {
		p.fail("syntax error: expected a number of %s, found %v", what, p.tok)
	}
	n := p.tok.num
	p.advance()
	if n < 1 || n > MaxUpkeepCount {
		p.errorf(line, "upkeep %s threshold %d out of range 1-%d", what, n, MaxUpkeepCount)
		return 0
	}
	return int(n)
}

// period parses a duration as a number of seconds or a number with an
// s, m, h or d suffix, no shorter than least nor longer than ten
// years.
func (p *parser) period(line int, what string, least time.Duration) time.Duration {
	n, unit := p.duration(what, true)
	if n <= 0 || n > int64(maxUpkeepPeriod/unit) {
		p.errorf(line, "invalid %s: out of range", what)
		return 0
	}
	if d := time.Duration(n) * unit; d >= least {
		return d
	}
	p.errorf(line, "%s shorter than %s", what, least)
	return 0
}
