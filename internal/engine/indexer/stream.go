package indexer

import (
	"compress/flate"
	"errors"
	"fmt"
	"hash"
	"hash/adler32"
	"hash/crc32"
	"io"
	"math"

	kflate "github.com/klauspost/compress/flate"

	"gotd/internal/git/pack"
)

// Reading a pack from a stream that may carry more data after the pack
// (a socket) must not consume any byte past the trailer, yet reading one
// byte per system call would be far too slow. The stream reader therefore
// keeps a lower bound of where the pack can end (limit) and never asks r
// for bytes beyond it; only when the parser demands a byte that lies past
// the bound does it read, and then exactly one byte, which a valid pack
// must contain because the parser never asks for more than the format
// needs. The bound is raised as parsing learns more:
//
//   - after the pack header: every remaining entry takes at least
//     minEntrySize bytes, and the trailer follows;
//   - inside a zlib stream: the Adler-32 (4 bytes) is still to come, and
//     the deflate data cannot expand more than maxDeflateRatio times, so
//     the part of the declared size not yet produced needs at least
//     (declared - produced - inflateSlack) / maxDeflateRatio more bytes;
//   - before the trailer: exactly the hash size remains;
//   - a call to Read asks for bytes the format requires (a fixed-size
//     field, or the content of a stored deflate block, which
//     compress/flate reads with io.ReadFull), so all of them may be read;
//   - anywhere inside deflate data, the Adler-32 and whatever follows the
//     entry are still to come (tail), so even a byte-by-byte Huffman
//     block is read in chunks of at least that size.
//
// compress/flate reads one byte at a time from an io.ByteReader and never
// past the end of the deflate stream; the zlib header and checksum are
// read here, so no decoder ever reads ahead on its own.
//
// It is also slow: klauspost/compress/flate, decoding from a
// *bytes.Reader, takes about three quarters of its time (the scan of
// git.git's pack, 849,014 entries: 3.8 s of CPU against 4.9 s with the
// calls to ReadByte). So the scan first inflates an entry's zlib stream
// from the bytes already buffered (scanner.inflate), without consuming
// them, and only if the stream does not end within them, or fails,
// inflates it again from the stream. So that the first try succeeds for
// all but the largest entries, the buffer is topped up before each zlib
// stream (topUp), never past the bound above: reads come earlier, they
// reach no further. An entry of at most maxWhole bytes is inflated in
// one call by inflate.Decoder, which reports the bytes its stream took
// (its fuzz test compares them, the content and what it accepts with
// compress/zlib); a larger one by klauspost's decoder, which, like
// compress/flate, reads a byte only when the bits it holds cannot
// finish the next code (at most the end-of-block code's length, plus
// the 10 bits of the shortest block after a block that is not the
// last) and a stored block's length and content with io.ReadFull, so
// it never reads past the end of a stream it decodes: the bytes the
// *bytes.Reader gave out are the zlib stream's (FuzzInflaters compares
// the end with compress/flate's).
//
// For a pack that Index rejects, the bound may have been wrong (a lying
// declared size), so bytes after the point of failure may be consumed.

const (
	// topUpRoom is the least room topUp leaves after the buffered bytes
	// for a read from r.
	topUpRoom = 64 << 10

	// streamBufSize is the size of the buffer, at least fastWant plus
	// topUpRoom; the more above, the less often topUp moves what it
	// holds to the start: at most fastWant bytes, once for every 320 KiB
	// consumed.
	streamBufSize = 512 << 10

	// fastWant is how many bytes topUp wants buffered before a zlib
	// stream. Of git.git's pack (849,014 entries, 496 MB), entries of
	// more than 128 KiB hold 4.9% of the bytes, of more than 64 KiB 14%.
	fastWant = 128 << 10

	// minTopUp is the least topUp reads: near the end of a pack the bound
	// moves on by about an entry at a time, and a read per entry would be
	// a system call per entry.
	minTopUp = 4 << 10

	// minEntrySize is the smallest a pack entry can be: a one-byte header,
	// the two-byte zlib header, two bytes of deflate data (an empty fixed
	// Huffman block takes 10 bits) and the four-byte Adler-32.
	minEntrySize = 9

	// maxDeflateRatio bounds the expansion of deflate data: the shortest
	// codes are one bit, a literal yields one byte and a length/distance
	// pair (two codes, two bits) at most 258 bytes, so one input byte
	// yields at most 8*258/2 = 1032 bytes.
	maxDeflateRatio = 1032

	// inflateSlack covers what the decompressor has decoded but not yet
	// returned (its 32 KiB window plus one pending match) and what the
	// bits it holds unread may still produce.
	inflateSlack = 64 << 10
)

// ErrTooLarge is wrapped by the error for a pack over Options.MaxPackSize.
var ErrTooLarge = errors.New("pack exceeds the size limit")

// ErrTooManyObjects is wrapped by the error for a pack whose header
// counts more objects than Options.MaxObjects.
var ErrTooManyObjects = errors.New("pack has too many objects")

// streamReader reads a pack from r, hashing and copying every consumed
// byte and computing the CRC-32 of each entry. It implements
// io.ByteReader and io.Reader for the entry parsers and compress/flate.
type streamReader struct {
	r     io.Reader
	buf   []byte
	pos   int    // next unread byte in buf
	end   int    // end of the valid bytes in buf
	mark  int    // start of the consumed bytes not yet passed to the sinks
	off   uint64 // pack offset of buf[pos]
	got   uint64 // bytes read from r so far (pack offset of buf[end])
	limit uint64 // reads from r stay below this offset (see above)
	tail  uint64 // bytes known to follow any position in the current deflate data
	max   uint64 // most bytes the pack may have
	rerr  error  // error returned by r together with data, reported next

	sum hash.Hash // pack checksum; nil once the trailer is reached
	crc uint32    // CRC-32 of the current entry
	out io.Writer // copy of the pack; nil for none
}

func newStreamReader(r io.Reader, sum hash.Hash, out io.Writer, max uint64, bounded bool) *streamReader {
	s := &streamReader{r: r, buf: make([]byte, streamBufSize), sum: sum, out: out, max: max}
	if !bounded {
		// The input is known to end with the pack (a file): read freely.
		s.limit = math.MaxUint64
	}
	return s
}

// atLeast records that at least n more bytes of pack follow the current
// position.
func (s *streamReader) atLeast(n uint64) {
	if end := s.off + n; end >= s.off && end > s.limit {
		s.limit = end
	}
}

// flush passes the consumed bytes to the pack hash, the entry CRC and
// the copy.
func (s *streamReader) flush() error {
	if s.mark == s.pos {
		return nil
	}
	b := s.buf[s.mark:s.pos]
	s.mark = s.pos
	if s.sum != nil {
		s.sum.Write(b)
		s.crc = crc32.Update(s.crc, crc32.IEEETable, b)
	}
	if s.out != nil {
		if _, err := s.out.Write(b); err != nil {
			return fmt.Errorf("write pack: %w", err)
		}
	}
	return nil
}

// fill reads more bytes from r into the empty buffer.
func (s *streamReader) fill() error {
	if err := s.flush(); err != nil {
		return err
	}
	s.pos, s.end, s.mark = 0, 0, 0
	if s.rerr != nil {
		return s.rerr
	}
	if s.got >= s.max {
		return ErrTooLarge
	}
	limit := max(s.limit, s.off+s.tail, s.off+1) // the byte demanded must be there
	n := min(uint64(len(s.buf)), limit-s.got)
	if s.max-s.got < n {
		n = s.max - s.got
	}
	for tries := 0; ; tries++ {
		m, err := s.r.Read(s.buf[:n])
		if m > 0 {
			s.end = m
			s.got += uint64(m)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			s.rerr = err
			return nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		if tries >= 100 {
			return io.ErrNoProgress
		}
	}
}

// topUp reads from r until want bytes are buffered, or the bound (limit,
// max) allows less than minTopUp more, or r returns no byte or an error;
// it moves the unconsumed bytes to the start of the buffer first if the
// room after them is short. An error from r is kept for fill to return
// when the buffered bytes run out, as if it had come then.
func (s *streamReader) topUp(want int) error {
	for s.end-s.pos < want && s.rerr == nil {
		bound := min(s.limit, s.max)
		if s.got >= bound || bound-s.got < minTopUp {
			return nil
		}
		if len(s.buf)-s.end < topUpRoom {
			if err := s.flush(); err != nil {
				return err
			}
			s.end = copy(s.buf, s.buf[s.pos:s.end])
			s.pos, s.mark = 0, 0
		}
		n := min(uint64(len(s.buf)-s.end), bound-s.got)
		m, err := s.r.Read(s.buf[s.end : s.end+int(n)])
		s.end += m
		s.got += uint64(m)
		if err != nil {
			s.rerr = eofIsUnexpected(err)
		}
		if m == 0 {
			return nil
		}
	}
	return nil
}

// ReadByte implements io.ByteReader.
func (s *streamReader) ReadByte() (byte, error) {
	if s.pos == s.end {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	c := s.buf[s.pos]
	s.pos++
	s.off++
	return c, nil
}

// Read implements io.Reader; it returns at most the buffered bytes.
func (s *streamReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.pos == s.end {
		// Every caller of Read (io.ReadFull for fixed-size fields, and
		// compress/flate for the content of a stored block) asks for
		// exactly the bytes the format says must come next.
		s.atLeast(uint64(len(p)))
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.buf[s.pos:s.end])
	s.pos += n
	s.off += uint64(n)
	return n, nil
}

// startEntry begins the CRC-32 of a new entry at the current position.
func (s *streamReader) startEntry() error {
	err := s.flush()
	s.crc = 0
	return err
}

// entryCRC returns the CRC-32 of the bytes consumed since startEntry.
func (s *streamReader) entryCRC() (uint32, error) {
	err := s.flush()
	return s.crc, err
}

// buffered reports how many bytes were read from r but not consumed.
func (s *streamReader) buffered() int { return s.end - s.pos }

// inflater is a zlib (RFC 1950) decoder built on compress/flate that
// reads the zlib header and Adler-32 itself, so it can be reset without
// allocating and never reads past the stream's end.
type inflater struct {
	fr    io.ReadCloser // flate decompressor
	rs    resetter      // fr
	adler hash.Hash32
	src   flate.Reader
	check bool // verify the Adler-32; off when re-reading verified data
	done  bool
}

// resetter is the Reset method of compress/flate's and klauspost's
// decompressors.
type resetter interface {
	Reset(r io.Reader, dict []byte) error
}

// newInflater returns an inflater built on compress/flate, for streams:
// it reads one byte at a time from an io.ByteReader and never past the
// end of the deflate data.
func newInflater() *inflater {
	fr := flate.NewReader(eofReader{})
	return &inflater{fr: fr, rs: fr.(resetter), adler: adler32.New()}
}

// newFastInflater returns an inflater for data in memory, built on
// klauspost/compress/flate, which decodes from a *bytes.Reader faster
// than compress/flate.
func newFastInflater() *inflater {
	fr := kflate.NewReader(eofReader{})
	return &inflater{fr: fr, rs: fr.(resetter), adler: adler32.New()}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
func (eofReader) ReadByte() (byte, error)  { return 0, io.EOF }

// reset starts decoding the zlib stream at the start of src.
func (z *inflater) reset(src flate.Reader, check bool) error {
	cmf, err := src.ReadByte()
	if err != nil {
		return fmt.Errorf("read zlib header: %w", eofIsUnexpected(err))
	}
	flg, err := src.ReadByte()
	if err != nil {
		return fmt.Errorf("read zlib header: %w", eofIsUnexpected(err))
	}
	// RFC 1950 section 2.2: deflate with a window of at most 32 KiB, a
	// header checksum, and no preset dictionary (Git never uses one).
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 || flg&0x20 != 0 {
		return fmt.Errorf("%w: bad zlib header", pack.ErrCorrupt)
	}
	z.rs.Reset(src, nil)
	z.adler.Reset()
	z.src, z.check, z.done = src, check, false
	return nil
}

// Read returns inflated bytes; io.EOF comes only after the Adler-32 was
// read (and, if checking, verified).
func (z *inflater) Read(p []byte) (int, error) {
	if z.done {
		return 0, io.EOF
	}
	n, err := z.fr.Read(p)
	if z.check {
		z.adler.Write(p[:n])
	}
	if err == io.EOF {
		if s, ok := z.src.(*streamReader); ok {
			// The tail was counted from inside the deflate data; the
			// Adler-32 starts here.
			s.atLeast(s.tail)
			s.tail = 0
		}
		var sum uint32
		for i := 0; i < 4; i++ {
			c, err := z.src.ReadByte()
			if err != nil {
				return n, fmt.Errorf("read zlib checksum: %w", eofIsUnexpected(err))
			}
			sum = sum<<8 | uint32(c)
		}
		if z.check && sum != z.adler.Sum32() {
			return n, fmt.Errorf("%w: zlib checksum mismatch", pack.ErrCorrupt)
		}
		z.done = true
		if n > 0 {
			return n, nil
		}
		return 0, io.EOF
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, io.ErrUnexpectedEOF
		}
		var ce flate.CorruptInputError
		if errors.As(err, &ce) {
			return n, fmt.Errorf("%w: %v", pack.ErrCorrupt, err)
		}
		return n, err
	}
	return n, nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
