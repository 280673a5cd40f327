package pack

// NameHash returns the sort key C Git's pack_name_hash computes for a
// path: its last sixteen non-space bytes, the last weighing most, so
// files with the same suffix sort together when deltas are searched.
// Whitespace is C Git's own isspace (space, tab, newline, carriage
// return), not the C library's. The value is the one C Git stores in the
// name-hash cache of reachability bitmaps.
func NameHash(path []byte) uint32 {
	var h uint32
	for _, c := range path {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		h = h>>2 + uint32(c)<<24
	}
	return h
}
