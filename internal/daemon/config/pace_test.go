package config

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

const repoBlock = "repository \"r\" {\n\tpath \"/r\"\n}\n"

func TestPace(t *testing.T) {
	tests := []struct {
		src  string
		want Pace
	}{
		{"", DefaultPace},
		{"connection request deadline 30m\n", Pace{RequestDeadline: 30 * time.Minute, MinRate: DefaultMinRate, RateInterval: DefaultRateInterval}},
		{"connection {\n\trequest timeout 5s\n\trequest deadline 2h\n\tminimum rate 4K per 10s\n}\n", Pace{RequestDeadline: 2 * time.Hour, MinRate: 4 << 10, RateInterval: 10 * time.Second}},
		{"connection minimum rate 100 per 1m\n", Pace{RequestDeadline: DefaultRequestDeadline, MinRate: 100, RateInterval: time.Minute}},
	}
	for _, tt := range tests {
		c, err := Parse("pace.conf", []byte(tt.src+repoBlock), Options{})
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if got := c.Pace; got != tt.want {
			t.Errorf("%q: got %+v; want %+v", tt.src, got, tt.want)
		}
	}
}

func TestPaceErrors(t *testing.T) {
	src := `connection request deadline 0
connection request deadline soon
connection request lifetime 1h
connection minimum rate 0 per 10s
connection minimum rate 1K 10s
connection minimum rate 1K per 10x
connection minimum speed 1K per 10s
`
	_, err := Parse("pace.conf", []byte(src+repoBlock), Options{})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("error %v", err)
	}
	want := []string{
		"pace.conf:1: invalid timeout: 0",
		"pace.conf:2: invalid timeout: soon",
		"pace.conf:3: syntax error: expected 'timeout' or 'deadline', found 'lifetime'",
		"pace.conf:4: invalid size: 0",
		"pace.conf:5: syntax error: expected 'per', found '10s'",
		"pace.conf:6: invalid timeout: 10x",
		"pace.conf:7: syntax error: expected 'rate', found 'speed'",
	}
	if !reflect.DeepEqual(cerr.Problems, want) {
		t.Errorf("got\n%q\nwant\n%q", cerr.Problems, want)
	}
}
