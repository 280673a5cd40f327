package wire

import (
	"gotd/internal/git/oid"
	"gotd/internal/protocol/pktline"
)

// Ref is one line of a version 0 reference advertisement.
type Ref struct {
	Name string
	ID   oid.ID
	// Peeled, if valid, is what an annotated tag peels to: it is
	// advertised on a "<name>^{}" line after the reference.
	Peeled oid.ID
}

// Advertise writes a version 0 reference advertisement: the first
// reference carries caps after a NUL; with no references a
// "capabilities^{}" line with the null id carries them. It ends with a
// flush. With v1 a "version 1" packet comes first.
func Advertise(pw *pktline.Writer, f oid.Format, refs []Ref, caps string, v1 bool) error {
	if v1 {
		if err := pw.WriteString("version 1\n"); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, 256)
	if len(refs) == 0 {
		buf = oid.Zero(f).AppendHex(buf)
		buf = append(buf, " capabilities^{}\x00"...)
		buf = append(buf, caps...)
		buf = append(buf, '\n')
		if err := pw.Write(buf); err != nil {
			return err
		}
		return pw.Flush()
	}
	for i, r := range refs {
		buf = r.ID.AppendHex(buf[:0])
		buf = append(buf, ' ')
		buf = append(buf, r.Name...)
		if i == 0 {
			buf = append(buf, 0)
			buf = append(buf, caps...)
		}
		buf = append(buf, '\n')
		if err := pw.Write(buf); err != nil {
			return err
		}
		if r.Peeled.Valid() {
			buf = r.Peeled.AppendHex(buf[:0])
			buf = append(buf, ' ')
			buf = append(buf, r.Name...)
			buf = append(buf, "^{}\n"...)
			if err := pw.Write(buf); err != nil {
				return err
			}
		}
	}
	return pw.Flush()
}
