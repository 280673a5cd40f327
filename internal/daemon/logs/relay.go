package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
)

// MaxLine bounds a line of a child's standard error: longer lines are
// logged cut at this length, marked truncated, and their rest dropped.
const MaxLine = 8192

// Relay logs the lines a child process writes to its standard error,
// which is a pipe from the parent (children have no terminal: issue
// 19), until r ends. A line the child's own logger wrote (see Options.
// Child) is logged again at its level with its message and attributes;
// any other line (a panic's trace, a runtime error) is logged as a
// warning with the line as an attribute. log should name the child:
// what the child says about itself, its role included, is not trusted
// and so kept apart. The text handler quotes control characters but
// DEL, which clean replaces: a child cannot write escape sequences to
// the operator's terminal.
func Relay(log *slog.Logger, r io.Reader) {
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if len(line) > 0 {
			relayLine(log, bytes.TrimRight(line, "\r\n"), full)
		}
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n') // the rest of a long line
		}
		if err != nil {
			return
		}
	}
}

// relayLine logs one line of a child's standard error.
func relayLine(log *slog.Logger, line []byte, truncated bool) {
	if len(line) == 0 {
		return
	}
	if !truncated && line[0] == '{' {
		if lv, msg, attrs, ok := decodeRecord(line); ok {
			log.LogAttrs(context.Background(), lv, msg, attrs...)
			return
		}
	}
	attrs := []slog.Attr{slog.String("line", cleanString(string(line)))}
	if truncated {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "standard error", attrs...)
}

// decodeRecord reads a record of slog's JSON handler: its level, its
// message and its other attributes in their order, strings cleaned,
// without its time and the role the child claims.
func decodeRecord(line []byte) (lv slog.Level, msg string, attrs []slog.Attr, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // sizes stay exact
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, "", nil, false
	}
	var level string
	var haveLevel, haveMsg bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, "", nil, false
		}
		key, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return 0, "", nil, false
		}
		switch key {
		case slog.TimeKey, "role":
		case slog.LevelKey:
			level, haveLevel = v.(string)
		case slog.MessageKey:
			msg, haveMsg = v.(string)
		default:
			attrs = append(attrs, slog.Any(cleanString(key), clean(v)))
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') || dec.More() {
		return 0, "", nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, "", nil, false // bytes after the record
	}
	if !haveLevel || !haveMsg || lv.UnmarshalText([]byte(level)) != nil {
		return 0, "", nil, false
	}
	return lv, cleanString(msg), attrs, true
}

// clean returns v, a decoded JSON value, with its strings cleaned.
func clean(v any) any {
	switch v := v.(type) {
	case string:
		return cleanString(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = clean(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[cleanString(k)] = clean(e)
		}
		return out
	}
	return v
}

// cleanString makes s valid UTF-8 without DEL, which slog's text
// handler would leave unquoted.
func cleanString(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x7f", "\uFFFD")
}
