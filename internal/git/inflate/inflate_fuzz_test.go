package inflate

import (
	"sync"
	"testing"
)

// fuzzDecoder is shared by the fuzz inputs a process runs, so that each
// input also meets tables left by the ones before.
var fuzzDecoder struct {
	sync.Mutex
	Decoder
}

// FuzzInflate checks Inflate against compress/zlib (see zlibResult): the
// same acceptance, content, n and error class, and nothing written past
// size. mode 0 takes data as the stream itself; other modes compress data
// with compress/zlib or klauspost/compress at a level mode picks, then
// cut it at cut (if not 0) and flip bit flip (if not 0). Each stream is
// tried at the size compress/zlib inflates it to (up to 1 MiB) and one
// either side, and at the size of data.
func FuzzInflate(f *testing.F) {
	for _, c := range craftedStreams() {
		if len(c.content) < 4096 {
			f.Add(zlibStream(c.deflate, []byte(c.content)), uint8(0), uint16(0), uint32(0))
		}
	}
	for i, kind := range []string{"text", "random", "runs"} {
		for _, n := range []int{0, 1, 40, 300, 2000} {
			data := testData(kind, n, uint64(n))
			for mode := uint8(1); mode < 12; mode += 3 {
				f.Add(data, mode+uint8(i), uint16(0), uint32(0))
			}
			f.Add(data, uint8(1), uint16(n/2+3), uint32(0))
			f.Add(data, uint8(2), uint16(0), uint32(n*4+21))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8, cut uint16, flip uint32) {
		src := data
		if mode != 0 {
			src = fuzzCompress(t, data, mode)
			if cut != 0 {
				src = src[:int(cut)%(len(src)+1)]
			}
			if flip != 0 && len(src) > 0 {
				bit := int(flip % uint32(8*len(src)))
				src[bit/8] ^= 1 << (bit % 8)
			}
		}
		fuzzDecoder.Lock()
		defer fuzzDecoder.Unlock()
		z := zlibDecode(src, 1<<20)
		size := len(z.out)
		for _, s := range []int{size, size - 1, size + 1, len(data)} {
			if s >= 0 && s < z.limit {
				compareWith(t, &fuzzDecoder.Decoder, src, s, z)
			}
		}
	})
}

// fuzzCompress compresses data with one of the writers and levels pack
// objects come from.
func fuzzCompress(t testing.TB, data []byte, mode uint8) []byte {
	levels := []int{0, 1, 2, 6, 9, -2} // -2 is HuffmanOnly
	return compress(t, data, levels[int(mode/2)%len(levels)], mode%2 != 0)
}
