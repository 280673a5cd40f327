package inflate

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// A crafted stream: a DEFLATE body, the content it inflates to, and the
// class of error Inflate must return when asked for len(content) bytes.
type crafted struct {
	name    string
	deflate []byte
	content string
	want    error
}

// craftedStreams covers each block type, matches of every overlap, the
// incomplete codes compress/flate accepts, and each kind of corruption.
func craftedStreams() []crafted {
	var cs []crafted
	add := func(name string, deflate []byte, content string, want error) {
		cs = append(cs, crafted{name, deflate, content, want})
	}
	w := func() *bitWriter { return new(bitWriter) }

	// Stored blocks (RFC 1951, section 3.2.4).
	stored := func(final bool, p string) []byte { return w().stored(final, p).done() }
	add("stored", stored(true, "hello, world"), "hello, world", nil)
	add("stored empty", stored(true, ""), "", nil)
	add("stored then stored", append(stored(false, "abc"), stored(true, "def")...), "abcdef", nil)
	add("stored 65535", stored(true, strings.Repeat("x", 65535)), strings.Repeat("x", 65535), nil)
	bad := stored(true, "abc")
	bad[3] ^= 1 // NLEN
	add("stored length check", bad, "abc", ErrCorrupt)

	// Fixed Huffman blocks.
	add("fixed empty", w().bits(1, 1).bits(1, 2).fixedSym(256).done(), "", nil)
	add("fixed literals", w().bits(1, 1).bits(1, 2).fixedLit("abc\x00\x8f\x90\xff").fixedSym(256).done(), "abc\x00\x8f\x90\xff", nil)
	for dist := 1; dist <= 9; dist++ {
		prefix := "abcdefghi"[:dist]
		for _, length := range []int{3, 4, 7, 8, 9, 15, 16, 17, 100, 257, 258} {
			var want strings.Builder
			want.WriteString(prefix)
			for want.Len() < dist+length {
				want.WriteByte(want.String()[want.Len()-dist])
			}
			add(fmt.Sprintf("fixed match dist %d length %d", dist, length),
				w().bits(1, 1).bits(1, 2).fixedLit(prefix).fixedMatch(length, dist).fixedLit("z").fixedSym(256).done(),
				want.String()+"z", nil)
		}
	}
	// Length 258 written as symbol 284 with all five extra bits set,
	// which compress/flate accepts as 258.
	add("fixed length 284+31", w().bits(1, 1).bits(1, 2).fixedLit("a").fixedSym(284).bits(31, 5).code(0, 5).fixedSym(256).done(),
		strings.Repeat("a", 259), nil)
	{
		// Distance 32768 back over 32768+ bytes of stored data.
		data := make([]byte, 40000)
		for i := range data {
			data[i] = byte(i*7 + i>>9)
		}
		s := w().bits(0, 1).bits(0, 2).bytes([]byte{0x40, 0x9c, 0xbf, 0x63}).bytes(data)
		s.bits(1, 1).bits(1, 2).fixedMatch(258, 32768).fixedMatch(10, 1).fixedSym(256)
		want := append([]byte(nil), data...)
		for range 258 {
			want = append(want, want[len(want)-32768])
		}
		for range 10 {
			want = append(want, want[len(want)-1])
		}
		add("fixed distance 32768", s.done(), string(want), nil)
	}
	add("fixed distance beyond output", w().bits(1, 1).bits(1, 2).fixedLit("ab").fixedMatch(3, 3).fixedSym(256).done(), "ababa", ErrCorrupt)
	add("fixed distance with no output", w().bits(1, 1).bits(1, 2).fixedMatch(3, 1).fixedSym(256).done(), "aaa", ErrCorrupt)
	add("fixed literal/length 286", w().bits(1, 1).bits(1, 2).fixedLit("a").fixedSym(286).fixedSym(256).done(), "a", ErrCorrupt)
	add("fixed literal/length 287", w().bits(1, 1).bits(1, 2).fixedLit("a").fixedSym(287).fixedSym(256).done(), "a", ErrCorrupt)
	add("fixed distance 30", w().bits(1, 1).bits(1, 2).fixedLit("abc").fixedSym(257).code(30, 5).fixedSym(256).done(), "abcabc", ErrCorrupt)
	add("fixed distance 31", w().bits(1, 1).bits(1, 2).fixedLit("abc").fixedSym(257).code(31, 5).fixedSym(256).done(), "abcabc", ErrCorrupt)
	add("reserved block type", w().bits(1, 1).bits(3, 2).done(), "", ErrCorrupt)
	add("fixed then stored then fixed",
		w().bits(0, 1).bits(1, 2).fixedLit("ab").fixedSym(256).stored(false, "cd").
			bits(1, 1).bits(1, 2).fixedMatch(4, 4).fixedSym(256).done(),
		"abcdabcd", nil)
	add("fixed then stored, unaligned",
		w().bits(0, 1).bits(1, 2).fixedLit("a").fixedSym(256).stored(true, "b").done(),
		"ab", nil)

	// Dynamic blocks (RFC 1951, section 3.2.7).
	{
		// Every literal 8 bits, lengths and end of block too: 286
		// symbols do not fill 8 bits, so give 30 literals 9 bits.
		lit := make([]uint8, 286)
		for i := range lit {
			lit[i] = 8
		}
		for i := 0; i < 60; i++ {
			lit[i] = 9
		}
		dist := make([]uint8, 30)
		for i := range dist {
			dist[i] = 5
		}
		for i := 0; i < 4; i++ {
			dist[i] = 4
		}
		dist[28], dist[29] = 6, 6
		dist[26], dist[27] = 6, 6
		// 4*(1/16) + 22*(1/32) + 4*(1/64) = 1/4 + 11/16 + 1/16 = 1.
		s := new(bitWriter)
		lc, dc := s.dynamic(true, lit, dist)
		put := func(sym int) { s.code(lc[sym], uint(lit[sym])) }
		for _, c := range []byte("dynamic!") {
			put(int(c))
		}
		ls, lx, ln := lengthSym(20)
		put(ls)
		s.bits(lx, ln)
		ds, dx, dn := distSym(8)
		s.code(dc[ds], uint(dist[ds])).bits(dx, dn)
		put(256)
		add("dynamic", s.done(), "dynamic!dynamic!dynamic!dyna", nil)
	}
	// Incomplete codes compress/flate accepts: one distance code of one
	// bit, and no distance code at all in a block of literals.
	{
		lit := make([]uint8, 257)
		lit['a'], lit['b'], lit[256] = 1, 2, 2
		s := new(bitWriter)
		lc, _ := s.dynamic(true, lit, []uint8{0})
		s.code(lc['a'], 1).code(lc['b'], 2).code(lc['a'], 1).code(lc[256], 2)
		add("dynamic empty distance code", s.done(), "aba", nil)

		s = new(bitWriter)
		lc, _ = s.dynamic(true, lit, []uint8{0})
		s.code(lc['a'], 1).code(lc[256], 2)
		add("dynamic empty distance code unused", s.done(), "a", nil)
	}
	{
		lit := make([]uint8, 258)
		lit['a'], lit[256], lit[257] = 1, 2, 2
		s := new(bitWriter)
		lc, dc := s.dynamic(true, lit, []uint8{1})
		s.code(lc['a'], 1).code(lc[257], 2).code(dc[0], 1).code(lc[256], 2)
		add("dynamic one distance code", s.done(), "aaaa", nil)

		s = new(bitWriter)
		lc, _ = s.dynamic(true, lit, []uint8{1})
		s.code(lc['a'], 1).code(lc[257], 2).code(1, 1).code(lc[256], 2)
		add("dynamic one distance code, other bit", s.done(), "aaaa", ErrCorrupt)

		s = new(bitWriter)
		lc, _ = s.dynamic(true, lit, []uint8{0})
		s.code(lc['a'], 1).code(lc[257], 2).code(0, 1).code(lc[256], 2)
		add("dynamic empty distance code used", s.done(), "aaaa", ErrCorrupt)

		// A distance code of one symbol 2 bits long is incomplete.
		s = new(bitWriter)
		lc, dc = s.dynamic(true, lit, []uint8{2})
		s.code(lc['a'], 1).code(lc[257], 2).code(dc[0], 2).code(lc[256], 2)
		add("dynamic incomplete distance code", s.done(), "aaaa", ErrCorrupt)

		// A literal/length code of one symbol, end of block, 1 bit.
		lit = make([]uint8, 257)
		lit[256] = 1
		s = new(bitWriter)
		lc, _ = s.dynamic(true, lit, []uint8{0})
		s.code(lc[256], 1)
		add("dynamic one literal/length code", s.done(), "", nil)
		s = new(bitWriter)
		s.dynamic(true, lit, []uint8{0})
		s.code(1, 1)
		add("dynamic one literal/length code, other bit", s.done(), "", ErrCorrupt)
	}
	{
		// Over-subscribed and incomplete literal/length codes.
		lit := make([]uint8, 257)
		lit['a'], lit['b'], lit['c'], lit[256] = 1, 2, 2, 2
		s := new(bitWriter)
		s.dynamic(true, lit, []uint8{1})
		add("dynamic over-subscribed", s.done(), "", ErrCorrupt)
		lit['c'] = 0
		lit[256] = 3
		s = new(bitWriter)
		s.dynamic(true, lit, []uint8{1})
		add("dynamic incomplete", s.done(), "", ErrCorrupt)
	}
	// Header fields: HLIT 30 and 31 (287, 288 codes) and HDIST 30 and 31
	// are too many.
	for _, tc := range []struct {
		name        string
		hlit, hdist uint64
	}{{"HLIT 287", 30, 0}, {"HLIT 288", 31, 0}, {"HDIST 31", 0, 30}, {"HDIST 32", 0, 31}} {
		add("dynamic "+tc.name, w().bits(1, 1).bits(2, 2).bits(tc.hlit, 5).bits(tc.hdist, 5).bits(0, 4).bits(0, 60).done(), "", ErrCorrupt)
	}
	// Code length codes: 16 first, a run past the end, and a code
	// length code that is incomplete, over-subscribed, or empty.
	{
		// Code length code: 16, 17, 18, 0 and 1 get lengths 2, 3, 3, 2, 2
		// (order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1 15).
		pre := func() *bitWriter {
			s := w().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(19-4, 4)
			for _, sym := range preOrder {
				l := map[uint8]uint64{16: 2, 17: 3, 18: 3, 0: 2, 1: 2}[sym]
				s.bits(l, 3)
			}
			return s
		}
		// Canonical: 0=00 1=01 16=10 17=110 18=111.
		add("dynamic 16 first", pre().code(2, 2).bits(0, 2).done(), "", ErrCorrupt)
		s := pre()
		for range 2 {
			s.code(7, 3).bits(127, 7) // 18: 138 zeros
		}
		add("dynamic run past the end", s.code(7, 3).bits(127, 7).done(), "", ErrCorrupt)
		add("dynamic code length code empty", w().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4).bits(0, 12).bits(0, 8).done(), "", ErrCorrupt)
		// Only 18 has a code length code, of 1 bit: compress/flate
		// accepts that code; 258 zeros then leave no end of block.
		add("dynamic one code length code", w().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4).bits(0, 6).bits(1, 3).bits(0, 3).
			code(0, 1).bits(127, 7).code(0, 1).bits(109, 7).done(), "", ErrCorrupt)
		add("dynamic code length code over-subscribed", w().bits(1, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4).bits(1, 3).bits(1, 3).bits(1, 3).bits(0, 3).bits(0, 16).done(), "", ErrCorrupt)
	}
	return cs
}

// TestCrafted inflates each crafted stream as it is, which leaves the end
// of src within eight bytes of every symbol, and followed by more bytes,
// which lets the fast loop decode it; both must give the same result, and
// compress/zlib must agree.
func TestCrafted(t *testing.T) {
	var d Decoder
	for _, c := range craftedStreams() {
		stream := zlibStream(c.deflate, []byte(c.content))
		for _, src := range [][]byte{stream, append(bytes.Clone(stream), make([]byte, 64)...)} {
			got, n, err := d.Inflate(nil, src, len(c.content))
			if class(err) != class(c.want) {
				t.Errorf("%s (%d bytes after): got %v; want %s", c.name, len(src)-len(stream), err, class(c.want))
				continue
			}
			if err == nil && (string(got) != c.content || n != len(stream)) {
				t.Errorf("%s (%d bytes after): got %d bytes, n %d; want %d bytes, n %d",
					c.name, len(src)-len(stream), len(got), n, len(c.content), len(stream))
			}
			compare(t, &d, src, len(c.content))
		}
	}
}

// TestCraftedVariants derives from each crafted stream the cases every
// error class needs: each truncation (ErrShort, unless already corrupt),
// sizes one off (ErrSize), each bit of the trailer flipped (ErrChecksum),
// and bytes after the stream (ignored, not counted in n).
func TestCraftedVariants(t *testing.T) {
	var d Decoder
	for _, c := range craftedStreams() {
		src := zlibStream(c.deflate, []byte(c.content))
		size := len(c.content)
		limit := len(src)
		if limit > 300 {
			limit = 300 // the long stored and distance 32768 streams
		}
		for cut := 0; cut < limit; cut++ {
			err := compare(t, &d, src[:cut], size)
			if c.want == nil && err != ErrShort {
				t.Fatalf("%s cut at %d: compress/zlib says %v; a valid stream cut short must be ErrShort", c.name, cut, err)
			}
		}
		if c.want != nil {
			continue
		}
		for _, s := range []int{size - 1, size + 1, 0, 2 * size} {
			if s >= 0 && s != size {
				if err := compare(t, &d, src, s); err != ErrSize {
					t.Fatalf("%s size %d: compress/zlib says %v", c.name, s, err)
				}
			}
		}
		for bit := range 32 {
			bad := bytes.Clone(src)
			bad[len(bad)-4+bit/8] ^= 1 << (bit % 8)
			if err := compare(t, &d, bad, size); err != ErrChecksum {
				t.Fatalf("%s bit %d of the trailer flipped: compress/zlib says %v", c.name, bit, err)
			}
		}
		long := append(bytes.Clone(src), "trailing \x78\x9c garbage"...)
		if err := compare(t, &d, long, size); err != nil {
			t.Fatalf("%s with trailing bytes: %v", c.name, err)
		}
	}
}

func TestHeader(t *testing.T) {
	body := new(bitWriter).bits(1, 1).bits(1, 2).fixedLit("x").fixedSym(256).done()
	good := zlibStream(body, []byte("x"))
	for _, tc := range []struct {
		name     string
		cmf, flg byte
		want     error
	}{
		{"default", 0x78, 0x9c, nil},
		{"fastest", 0x78, 0x01, nil},
		{"window 256", 0x08, 0x1d, nil},
		{"method 7", 0x77, 0x00, ErrCorrupt},
		{"method 15", 0x7f, 0x00, ErrCorrupt},
		{"window 64 KiB", 0x88, 0x00, ErrCorrupt},
		{"check bits", 0x78, 0x9d, ErrCorrupt},
		{"preset dictionary", 0x78, 0xbb, ErrCorrupt},
		// FDICT with the dictionary id of no dictionary, which
		// compress/zlib accepts and C Git's zlib does not.
		{"preset empty dictionary", 0x78, 0xbb, ErrCorrupt},
	} {
		if (uint(tc.cmf)<<8|uint(tc.flg))%31 != 0 && tc.name != "check bits" {
			// Fix the check bits for cases about other fields.
			tc.flg += byte(31 - (uint(tc.cmf)<<8|uint(tc.flg))%31)
		}
		src := append([]byte{tc.cmf, tc.flg}, good[2:]...)
		if tc.name == "preset empty dictionary" {
			src = append([]byte{tc.cmf, tc.flg, 0, 0, 0, 1}, good[2:]...)
		}
		var d Decoder
		_, _, err := d.Inflate(nil, src, 1)
		if class(err) != class(tc.want) {
			t.Errorf("%s (%02x %02x): got %v; want %s", tc.name, tc.cmf, tc.flg, err, class(tc.want))
		}
		if tc.flg&0x20 == 0 {
			compare(t, &d, src, 1)
		}
	}
	var d Decoder
	for _, src := range [][]byte{nil, {0x78}} {
		if _, _, err := d.Inflate(nil, src, 0); err != ErrShort {
			t.Errorf("src %x: got %v; want ErrShort", src, err)
		}
	}
}

func TestNegativeSize(t *testing.T) {
	var d Decoder
	src := zlibStream(new(bitWriter).bits(1, 1).bits(1, 2).fixedSym(256).done(), nil)
	if _, _, err := d.Inflate(nil, src, -1); !errors.Is(err, ErrSize) {
		t.Fatalf("got %v; want ErrSize", err)
	}
}

// TestDst checks where the content goes: into dst's array when it has
// room, else into a new array of exactly size bytes.
func TestDst(t *testing.T) {
	var d Decoder
	content := []byte(strings.Repeat("tree 100644 blob ", 40))
	src := compress(t, content, 6, false)
	dst := make([]byte, 3, len(content))
	got, _, err := d.Inflate(dst, src, len(content))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Inflate: %v", err)
	}
	if &got[0] != &dst[:1][0] {
		t.Errorf("with cap(dst) = size: content not in dst's array")
	}
	got, _, err = d.Inflate(make([]byte, 0, len(content)-1), src, len(content))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Inflate: %v", err)
	}
	if cap(got) != len(content) {
		t.Errorf("with a short dst: got cap %d; want %d", cap(got), len(content))
	}
	got, _, err = d.Inflate(nil, compress(t, nil, 6, false), 0)
	if err != nil || len(got) != 0 {
		t.Errorf("empty: got %d bytes, %v", len(got), err)
	}
}

// TestAllocs checks that a reused Decoder writing into a dst with room
// allocates nothing, for each kind of block.
func TestAllocs(t *testing.T) {
	if runtime.GOOS == "js" {
		t.Skip()
	}
	var d Decoder
	content := testData("text", 50000, 1)
	for _, level := range []int{0, 1, 9, -2} {
		src := compress(t, content, level, false)
		dst := make([]byte, 0, len(content))
		allocs := testing.AllocsPerRun(20, func() {
			if _, _, err := d.Inflate(dst, src, len(content)); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("level %d: %v allocations per Inflate; want 0", level, allocs)
		}
	}
}

// TestHostileSize checks that a declared size far beyond what src could
// inflate to does not allocate it.
func TestHostileSize(t *testing.T) {
	var d Decoder
	src := compress(t, []byte("a small object"), 6, false)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := d.Inflate(nil, src, 1<<40)
	runtime.ReadMemStats(&after)
	if err != ErrSize {
		t.Errorf("got %v; want ErrSize", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d bytes for a stream of %d", n, len(src))
	}
	// A zip bomb: 64 MiB of zeros declared as such inflates; declared
	// one byte short it fails without writing past size.
	zeros := make([]byte, 64<<20)
	bomb := compress(t, zeros, 9, false)
	got, _, err := d.Inflate(nil, bomb, len(zeros))
	if err != nil || !bytes.Equal(got, zeros) {
		t.Fatalf("64 MiB of zeros: %v", err)
	}
	if _, _, err := d.Inflate(got[:0], bomb, len(zeros)-1); err != ErrSize {
		t.Fatalf("64 MiB of zeros, size one short: got %v; want ErrSize", err)
	}
}
