package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
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
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // sizes stay exact
	if !truncated && line[0] == '{' && dec.Decode(&rec) == nil && !dec.More() {
		level, lok := rec[slog.LevelKey].(string)
		msg, mok := rec[slog.MessageKey].(string)
		var lv slog.Level
		if lok && mok && lv.UnmarshalText([]byte(level)) == nil {
			keys := make([]string, 0, len(rec))
			for k := range rec {
				switch k {
				case slog.TimeKey, slog.LevelKey, slog.MessageKey, "role":
				default:
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			attrs := make([]slog.Attr, 0, len(keys))
			for _, k := range keys {
				attrs = append(attrs, slog.Any(cleanString(k), clean(rec[k])))
			}
			log.LogAttrs(context.Background(), lv, cleanString(msg), attrs...)
			return
		}
	}
	attrs := []slog.Attr{slog.String("line", cleanString(string(line)))}
	if truncated {
		attrs = append(attrs, slog.Bool("truncated", true))
	}
	log.LogAttrs(context.Background(), slog.LevelWarn, "standard error", attrs...)
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
