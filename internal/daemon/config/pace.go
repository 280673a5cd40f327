package config

import "time"

// Defaults of the connection block's pace settings.
const (
	DefaultRequestDeadline = 4 * time.Hour
	DefaultMinRate         = 1 << 10
	DefaultRateInterval    = 30 * time.Second
)

// Pace bounds the time a client's request takes as a whole, beyond the
// wait for each of its reads (Config.RequestTimeout).
type Pace struct {
	// RequestDeadline ends a request (a connection, or one HTTP
	// request) that has lasted this long, whatever it is doing.
	RequestDeadline time.Duration
	// MinRate is the fewest bytes a client must send, or read, in
	// every RateInterval the server waits on it.
	MinRate      int64
	RateInterval time.Duration
}

// DefaultPace is the pace of a configuration that sets none.
var DefaultPace = Pace{RequestDeadline: DefaultRequestDeadline, MinRate: DefaultMinRate, RateInterval: DefaultRateInterval}

// requestOption parses what follows "request": "timeout" or
// "deadline" and a time.
func (p *parser) requestOption() {
	switch {
	case p.is("timeout"):
		p.advance()
		p.cfg.RequestTimeout = p.timeout()
	case p.is("deadline"):
		p.advance()
		p.cfg.Pace.RequestDeadline = p.timeout()
	default:
		p.fail("syntax error: expected 'timeout' or 'deadline', found %v", p.tok)
	}
}

// minimumRate parses what follows "minimum": "rate", a size, "per" and
// a time.
func (p *parser) minimumRate() {
	p.expect("rate")
	p.cfg.Pace.MinRate = p.size()
	p.expect("per")
	p.cfg.Pace.RateInterval = p.timeout()
}
