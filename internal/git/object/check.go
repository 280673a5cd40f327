package object

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"gotd/internal/git/oid"
)

// MsgID names one problem Check can find, as C Git's fsck names it in
// fsck.<msg-id> and receive.fsck.<msg-id> (git-config(1)); String returns
// that name.
type MsgID uint8

// Severity is what a problem means for the object: SevIgnore drops it,
// SevInfo and SevWarn report it through Checker.Warn and accept the
// object, SevError rejects the object.
type Severity uint8

// Severities, in increasing order.
const (
	SevIgnore Severity = iota
	SevInfo
	SevWarn
	SevError
)

// The problems Check finds. The default severity of each, in the table
// below, is C Git's (fsck.h, FOREACH_FSCK_MSG_ID, as of Git 2.39), so an
// object Check accepts by default is one `git fsck` and
// receive.fsckObjects=true accept, possibly with warnings:
//
//	id                      default  object   meaning
//	nulInHeader             fatal    all      NUL byte before the end of the header
//	unterminatedHeader      fatal    all      header not ended by a newline
//	badTree                 fatal    tree     entry cannot be parsed
//	missingTree             fatal    commit   first line is not "tree"
//	badTreeSha1             fatal    commit   tree id is not hexadecimal of the format
//	badParentSha1           fatal    commit   parent id is not hexadecimal of the format
//	missingObject           fatal    tag      first line is not "object"
//	badObjectSha1           fatal    tag      object id is not hexadecimal of the format
//	missingTypeEntry        fatal    tag      second line is not "type"
//	missingType             fatal    tag      nothing after "type"
//	badType                 fatal    tag      type is not commit, tree, blob or tag
//	missingTagEntry         fatal    tag      third line is not "tag"
//	missingTag              fatal    tag      nothing after "tag"
//	missingAuthor           error    commit   no author line after the parents
//	multipleAuthors         error    commit   more than one author line
//	missingCommitter        error    commit   no committer line after the author
//	missingNameBeforeEmail  error    ident    identity starts with '<'
//	badName                 error    ident    '>' in the name
//	missingEmail            error    ident    no '<'
//	missingSpaceBeforeEmail error    ident    no space before '<'
//	badEmail                error    ident    '<' in the email or no '>'
//	missingSpaceBeforeDate  error    ident    no space after '>'
//	badDate                 error    ident    date is not a decimal followed by a space
//	zeroPaddedDate          error    ident    date has leading zeros
//	badDateOverflow         error    ident    date does not fit a signed 64-bit integer
//	badTimezone             error    ident    time zone is not [+-]dddd ending the line
//	duplicateEntries        error    tree     two entries with the same name
//	treeNotSorted           error    tree     entries out of Git's order
//	gitmodulesSymlink       error    tree     .gitmodules (or an alias) is a symlink
//	nulInCommit             warn     commit   NUL byte in the message
//	nullSha1                warn     tree     entry names the null id
//	fullPathname            warn     tree     entry name holds '/'
//	emptyName               warn     tree     empty entry name (unreachable: badTree first)
//	hasDot                  warn     tree     entry named "."
//	hasDotdot               warn     tree     entry named ".."
//	hasDotgit               warn     tree     entry named ".git" or an HFS+/NTFS alias of it
//	zeroPaddedFilemode      warn     tree     mode with leading zeros
//	badFilemode             info     tree     mode other than the five standard ones
//	gitignoreSymlink        info     tree     .gitignore (or an alias) is a symlink
//	gitattributesSymlink    info     tree     .gitattributes (or an alias) is a symlink
//	mailmapSymlink          info     tree     .mailmap (or an alias) is a symlink
//	missingTaggerEntry      info     tag      no tagger line
//	extraHeaderEntry        ignore   tag      text other than a blank line after the tagger
//
// C Git rates the ids marked fatal above as errors and refuses to demote
// only the first two; here all of them are fatal, because the object
// could not be read afterwards (Check accepting an object implies
// ParseCommit, ParseTag or TreeIter accepting it).
//
// Not checked: badTagName (info; the tag name as a ref name), and the
// checks C Git makes across objects once all are read: the content of
// .gitmodules blobs (gitmodulesMissing, gitmodulesBlob, gitmodulesParse,
// gitmodulesUrl, gitmodulesPath, gitmodulesName, gitmodulesUpdate,
// gitmodulesLarge) and whether tagged objects have the declared type
// (badTagObject). Checker.Gitmodules reports the blobs a caller must
// check for the former.
const (
	MsgNulInHeader MsgID = iota + 1
	MsgUnterminatedHeader
	MsgBadTree
	MsgMissingTree
	MsgBadTreeSha1
	MsgBadParentSha1
	MsgMissingObject
	MsgBadObjectSha1
	MsgMissingTypeEntry
	MsgMissingType
	MsgBadType
	MsgMissingTagEntry
	MsgMissingTag
	MsgMissingAuthor
	MsgMultipleAuthors
	MsgMissingCommitter
	MsgMissingNameBeforeEmail
	MsgBadName
	MsgMissingEmail
	MsgMissingSpaceBeforeEmail
	MsgBadEmail
	MsgMissingSpaceBeforeDate
	MsgBadDate
	MsgZeroPaddedDate
	MsgBadDateOverflow
	MsgBadTimezone
	MsgDuplicateEntries
	MsgTreeNotSorted
	MsgGitmodulesSymlink
	MsgNulInCommit
	MsgNullSha1
	MsgFullPathname
	MsgEmptyName
	MsgHasDot
	MsgHasDotdot
	MsgHasDotgit
	MsgZeroPaddedFilemode
	MsgBadFilemode
	MsgGitignoreSymlink
	MsgGitattributesSymlink
	MsgMailmapSymlink
	MsgMissingTaggerEntry
	MsgExtraHeaderEntry
	numMsgIDs
)

// severityFatal marks ids that cannot be demoted.
const severityFatal = SevError + 1

var msgInfo = [numMsgIDs]struct {
	name string
	sev  Severity
	text string // what Problem.Error says
}{
	MsgNulInHeader:             {"nulInHeader", severityFatal, "NUL byte in the header"},
	MsgUnterminatedHeader:      {"unterminatedHeader", severityFatal, "unterminated header"},
	MsgBadTree:                 {"badTree", severityFatal, "cannot be parsed as a tree"},
	MsgMissingTree:             {"missingTree", severityFatal, "missing tree line"},
	MsgBadTreeSha1:             {"badTreeSha1", severityFatal, "bad tree id"},
	MsgBadParentSha1:           {"badParentSha1", severityFatal, "bad parent id"},
	MsgMissingObject:           {"missingObject", severityFatal, "missing object line"},
	MsgBadObjectSha1:           {"badObjectSha1", severityFatal, "bad object id"},
	MsgMissingTypeEntry:        {"missingTypeEntry", severityFatal, "missing type line"},
	MsgMissingType:             {"missingType", severityFatal, "unterminated type line"},
	MsgBadType:                 {"badType", severityFatal, "bad type"},
	MsgMissingTagEntry:         {"missingTagEntry", severityFatal, "missing tag line"},
	MsgMissingTag:              {"missingTag", severityFatal, "unterminated tag line"},
	MsgMissingAuthor:           {"missingAuthor", SevError, "missing author line"},
	MsgMultipleAuthors:         {"multipleAuthors", SevError, "multiple author lines"},
	MsgMissingCommitter:        {"missingCommitter", SevError, "missing committer line"},
	MsgMissingNameBeforeEmail:  {"missingNameBeforeEmail", SevError, "missing name before email"},
	MsgBadName:                 {"badName", SevError, "bad name"},
	MsgMissingEmail:            {"missingEmail", SevError, "missing email"},
	MsgMissingSpaceBeforeEmail: {"missingSpaceBeforeEmail", SevError, "missing space before email"},
	MsgBadEmail:                {"badEmail", SevError, "bad email"},
	MsgMissingSpaceBeforeDate:  {"missingSpaceBeforeDate", SevError, "missing space before date"},
	MsgBadDate:                 {"badDate", SevError, "bad date"},
	MsgZeroPaddedDate:          {"zeroPaddedDate", SevError, "zero-padded date"},
	MsgBadDateOverflow:         {"badDateOverflow", SevError, "date overflows"},
	MsgBadTimezone:             {"badTimezone", SevError, "bad time zone"},
	MsgDuplicateEntries:        {"duplicateEntries", SevError, "duplicate entries"},
	MsgTreeNotSorted:           {"treeNotSorted", SevError, "entries not sorted"},
	MsgGitmodulesSymlink:       {"gitmodulesSymlink", SevError, ".gitmodules is a symbolic link"},
	MsgNulInCommit:             {"nulInCommit", SevWarn, "NUL byte in the message"},
	MsgNullSha1:                {"nullSha1", SevWarn, "entry with the null id"},
	MsgFullPathname:            {"fullPathname", SevWarn, "entry name with a slash"},
	MsgEmptyName:               {"emptyName", SevWarn, "empty entry name"},
	MsgHasDot:                  {"hasDot", SevWarn, "entry named '.'"},
	MsgHasDotdot:               {"hasDotdot", SevWarn, "entry named '..'"},
	MsgHasDotgit:               {"hasDotgit", SevWarn, "entry named '.git'"},
	MsgZeroPaddedFilemode:      {"zeroPaddedFilemode", SevWarn, "zero-padded file mode"},
	MsgBadFilemode:             {"badFilemode", SevInfo, "bad file mode"},
	MsgGitignoreSymlink:        {"gitignoreSymlink", SevInfo, ".gitignore is a symbolic link"},
	MsgGitattributesSymlink:    {"gitattributesSymlink", SevInfo, ".gitattributes is a symbolic link"},
	MsgMailmapSymlink:          {"mailmapSymlink", SevInfo, ".mailmap is a symbolic link"},
	MsgMissingTaggerEntry:      {"missingTaggerEntry", SevInfo, "missing tagger line"},
	MsgExtraHeaderEntry:        {"extraHeaderEntry", SevIgnore, "extra header after tagger"},
}

// String returns the id's name as git-config(1) spells it ("badDate").
func (m MsgID) String() string {
	if m == 0 || m >= numMsgIDs {
		return fmt.Sprintf("msgid(%d)", uint8(m))
	}
	return msgInfo[m].name
}

// DefaultSeverity returns C Git's default severity of m (fatal ids
// report SevError).
func (m MsgID) DefaultSeverity() Severity {
	if m == 0 || m >= numMsgIDs {
		return SevError
	}
	return min(msgInfo[m].sev, SevError)
}

// ParseMsgID returns the id named name, case-insensitively as git-config
// keys are compared.
func ParseMsgID(name string) (MsgID, error) {
	for m := MsgID(1); m < numMsgIDs; m++ {
		if len(name) == len(msgInfo[m].name) && bytes.EqualFold([]byte(name), []byte(msgInfo[m].name)) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("object: unknown fsck message id %q", name)
}

func (m MsgID) describe() string {
	if m == 0 || m >= numMsgIDs {
		return m.String()
	}
	return msgInfo[m].text
}

// Problem is a problem Check found in an object. Check returns one as
// its error; Checker.Warn receives the ones below SevError.
type Problem struct {
	Type Type  // the checked object's type
	ID   MsgID // which problem
	// Where says in which header the problem is ("author", "committer",
	// "tagger") or is empty.
	Where string
}

// Error returns a message such as
// "object: commit: bad date in author line (badDate)".
func (p *Problem) Error() string {
	where := ""
	if p.Where != "" {
		where = " in " + p.Where + " line"
	}
	return fmt.Sprintf("object: %s: %s%s (%s)", p.Type, p.ID.describe(), where, p.ID)
}

// Checker validates objects as C Git's fsck does (fsck.c). The zero
// value applies C Git's default severities and is safe for concurrent
// use as long as its fields are not changed.
type Checker struct {
	// Severity overrides the default severity of ids, as
	// receive.fsck.<msg-id> does. Overrides of fatal ids are ignored.
	Severity map[MsgID]Severity
	// Strict raises warnings (not infos) to errors and rejects the mode
	// 0100664, as `git fsck --strict` does.
	Strict bool
	// Warn, if not nil, receives each problem that does not reject the
	// object. Problems after the first error are not reported.
	Warn func(*Problem)
	// Gitmodules, if not nil, receives the id of every blob a tree names
	// as .gitmodules (or an alias of it), which the caller should check
	// as C Git does once all objects are read.
	Gitmodules func(oid.ID)
}

// Check validates the content of an object of type t in format f with
// C Git's default severities. It returns nil or a *Problem. Blobs are
// always valid. It does not allocate unless it returns an error.
func Check(f oid.Format, t Type, data []byte) error {
	var c Checker
	return c.Check(f, t, data)
}

// Check validates the content of an object of type t in format f. It
// returns nil or a *Problem for the first problem of SevError severity;
// lesser problems go to c.Warn.
func (c *Checker) Check(f oid.Format, t Type, data []byte) error {
	if !f.Valid() {
		return fmt.Errorf("object: check: invalid object format %v", f)
	}
	switch t {
	case Commit:
		return c.checkCommit(f, data)
	case Tree:
		return c.checkTree(f, data)
	case Tag:
		return c.checkTag(f, data)
	case Blob:
		return nil
	}
	return fmt.Errorf("object: check: cannot check an object of type %v", t)
}

// report applies the severity of id to a problem in an object of type t
// and returns the error to stop with, or nil to go on.
func (c *Checker) report(t Type, id MsgID, where string) error {
	sev := msgInfo[id].sev
	if sev == severityFatal {
		return &Problem{Type: t, ID: id, Where: where}
	}
	if s, ok := c.Severity[id]; ok {
		sev = s
	}
	if c.Strict && sev == SevWarn {
		sev = SevError
	}
	switch sev {
	case SevIgnore:
		return nil
	case SevInfo, SevWarn:
		if c.Warn != nil {
			c.Warn(&Problem{Type: t, ID: id, Where: where})
		}
		return nil
	}
	return &Problem{Type: t, ID: id, Where: where}
}

// verifyHeaders checks that the header of a commit or tag holds no NUL and
// ends with a newline, which the rest of the checks rely on to stay within
// the header (fsck.c, verify_headers).
func (c *Checker) verifyHeaders(t Type, data []byte) error {
	for i, b := range data {
		switch b {
		case 0:
			return c.report(t, MsgNulInHeader, "")
		case '\n':
			if i+1 < len(data) && data[i+1] == '\n' {
				return nil
			}
		}
	}
	// No blank line: an object without a message is fine as long as its
	// last header line is terminated.
	if len(data) > 0 && data[len(data)-1] == '\n' {
		return nil
	}
	return c.report(t, MsgUnterminatedHeader, "")
}

// hexLine checks that b starts with hexadecimal id of format f followed
// by a newline, and returns the rest after the newline.
func hexLine(f oid.Format, b []byte) (rest []byte, ok bool) {
	n := f.HexSize()
	if len(b) <= n || b[n] != '\n' {
		return nil, false
	}
	if _, err := oid.ParseHexBytes(f, b[:n]); err != nil {
		return nil, false
	}
	return b[n+1:], true
}

// checkIdent checks the identity at the start of b, after its header
// name, and returns the rest after its line.
func (c *Checker) checkIdent(t Type, where string, b []byte) (rest []byte, err error) {
	line, rest, _ := cutLine(b)
	if _, id := parseIdent(line); id != 0 {
		return rest, c.report(t, id, where)
	}
	return rest, nil
}

// checkCommit follows fsck.c, fsck_commit.
func (c *Checker) checkCommit(f oid.Format, data []byte) error {
	if err := c.verifyHeaders(Commit, data); err != nil {
		return err
	}
	b, ok := bytes.CutPrefix(data, []byte("tree "))
	if !ok {
		return c.report(Commit, MsgMissingTree, "")
	}
	if b, ok = hexLine(f, b); !ok {
		return c.report(Commit, MsgBadTreeSha1, "")
	}
	for {
		p, ok := bytes.CutPrefix(b, []byte("parent "))
		if !ok {
			break
		}
		if b, ok = hexLine(f, p); !ok {
			return c.report(Commit, MsgBadParentSha1, "")
		}
	}
	authors := 0
	for {
		p, ok := bytes.CutPrefix(b, []byte("author "))
		if !ok {
			break
		}
		authors++
		var err error
		if b, err = c.checkIdent(Commit, "author", p); err != nil {
			return err
		}
	}
	switch {
	case authors == 0:
		if err := c.report(Commit, MsgMissingAuthor, ""); err != nil {
			return err
		}
	case authors > 1:
		if err := c.report(Commit, MsgMultipleAuthors, ""); err != nil {
			return err
		}
	}
	p, ok := bytes.CutPrefix(b, []byte("committer "))
	if !ok {
		return c.report(Commit, MsgMissingCommitter, "")
	}
	if _, err := c.checkIdent(Commit, "committer", p); err != nil {
		return err
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return c.report(Commit, MsgNulInCommit, "")
	}
	return nil
}

// checkTag follows fsck.c, fsck_tag_standalone.
func (c *Checker) checkTag(f oid.Format, data []byte) error {
	if err := c.verifyHeaders(Tag, data); err != nil {
		return err
	}
	b, ok := bytes.CutPrefix(data, []byte("object "))
	if !ok {
		return c.report(Tag, MsgMissingObject, "")
	}
	if b, ok = hexLine(f, b); !ok {
		return c.report(Tag, MsgBadObjectSha1, "")
	}
	if b, ok = bytes.CutPrefix(b, []byte("type ")); !ok {
		return c.report(Tag, MsgMissingTypeEntry, "")
	}
	line, b, ok := cutLine(b)
	if !ok {
		return c.report(Tag, MsgMissingType, "")
	}
	if _, err := ParseType(line); err != nil {
		return c.report(Tag, MsgBadType, "")
	}
	if b, ok = bytes.CutPrefix(b, []byte("tag ")); !ok {
		return c.report(Tag, MsgMissingTagEntry, "")
	}
	if _, b, ok = cutLine(b); !ok {
		return c.report(Tag, MsgMissingTag, "")
	}
	if p, ok := bytes.CutPrefix(b, []byte("tagger ")); ok {
		var err error
		if b, err = c.checkIdent(Tag, "tagger", p); err != nil {
			return err
		}
	} else if err := c.report(Tag, MsgMissingTaggerEntry, ""); err != nil {
		return err
	}
	if len(b) > 0 && b[0] != '\n' {
		return c.report(Tag, MsgExtraHeaderEntry, "")
	}
	return nil
}

// checkTree follows fsck.c, fsck_tree: it collects which problems the
// entries have, then reports each kind once, in C Git's order.
func (c *Checker) checkTree(f oid.Format, data []byte) error {
	var (
		nullSha1, fullPath, emptyName, dot, dotdot, dotgit bool
		zeroPad, badMode, dups, unsorted                   bool
	)
	// Names of non-directory entries that a later directory entry of the
	// same name could duplicate; see verifyOrder.
	var cands nameStack
	var prevName []byte
	var prevMode uint32
	for off := 0; off < len(data); {
		mode, name, id, n, err := parseTreeEntry(f, data[off:])
		if err != nil {
			return c.report(Tree, MsgBadTree, "")
		}
		zeroPad = zeroPad || data[off] == '0'
		off += n
		nullSha1 = nullSha1 || oid.ZeroBytes(id)
		// Most names can be none of the special ones (plainName):
		// of them only a slash or backslash is looked for, one word
		// at a time.
		if !plainName(name) || hasSlashes(name) {
			fullPath = fullPath || bytes.IndexByte(name, '/') >= 0
			dot = dot || string(name) == "."
			dotdot = dotdot || string(name) == ".."
			emptyName = emptyName || len(name) == 0
			var err error
			if dotgit, err = c.specialName(f, name, mode, id, dotgit); err != nil {
				return err
			}
		}

		switch mode {
		case ModeBlob, ModeExec, ModeSymlink, ModeTree, ModeGitlink:
		case 0o100664:
			// Early Git recorded group-writable files.
			badMode = badMode || c.Strict
		default:
			badMode = true
		}

		if prevName != nil {
			switch verifyOrder(prevName, prevMode, name, mode, &cands) {
			case orderUnsorted:
				unsorted = true
			case orderDup:
				dups = true
			}
		}
		prevName, prevMode = name, mode
	}
	for _, p := range [...]struct {
		has bool
		id  MsgID
	}{
		{nullSha1, MsgNullSha1},
		{fullPath, MsgFullPathname},
		{emptyName, MsgEmptyName},
		{dot, MsgHasDot},
		{dotdot, MsgHasDotdot},
		{dotgit, MsgHasDotgit},
		{zeroPad, MsgZeroPaddedFilemode},
		{badMode, MsgBadFilemode},
		{dups, MsgDuplicateEntries},
		{unsorted, MsgTreeNotSorted},
	} {
		if p.has {
			if err := c.report(Tree, p.id, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// specialName runs the checks of a name that plainName does not clear:
// those of names that HFS+ or NTFS would take for .git, .gitmodules,
// .gitignore, .gitattributes or .mailmap. It returns dotgit, set if the
// name is an alias of .git.
func (c *Checker) specialName(f oid.Format, name []byte, mode uint32, id []byte, dotgit bool) (bool, error) {
	dotgit = dotgit || isHFSDotGit(name) || isNTFSDotGit(name)
	symlink := mode&modeTypeMask == ModeSymlink
	if isHFSDot(name, "gitmodules") || isNTFSDotGeneric(name, "gitmodules", "gi7eba") {
		if err := c.gitmodules(f, symlink, id); err != nil {
			return dotgit, err
		}
	}
	if symlink {
		if isHFSDot(name, "gitignore") || isNTFSDotGeneric(name, "gitignore", "gi250a") {
			if err := c.report(Tree, MsgGitignoreSymlink, ""); err != nil {
				return dotgit, err
			}
		}
		if isHFSDot(name, "gitattributes") || isNTFSDotGeneric(name, "gitattributes", "gi7d29") {
			if err := c.report(Tree, MsgGitattributesSymlink, ""); err != nil {
				return dotgit, err
			}
		}
		if isHFSDot(name, "mailmap") || isNTFSDotGeneric(name, "mailmap", "maba30") {
			if err := c.report(Tree, MsgMailmapSymlink, ""); err != nil {
				return dotgit, err
			}
		}
	}
	// NTFS treats a backslash as a directory separator, so each
	// backslash-separated part must pass the NTFS checks too.
	for rest := name; ; {
		i := bytes.IndexByte(rest, '\\')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		dotgit = dotgit || isNTFSDotGit(rest)
		if isNTFSDotGeneric(rest, "gitmodules", "gi7eba") {
			if err := c.gitmodules(f, symlink, id); err != nil {
				return dotgit, err
			}
		}
	}
	return dotgit, nil
}

// plainName reports whether name can be none of the names the checks of
// specialName look for, as long as it holds no backslash (hasSlashes).
// Each of those names either starts, in its first code point HFS+ does
// not ignore, with '.' (the code points HFS+ ignores are all outside
// ASCII), or is an NTFS short name, which has a '~' in its first seven
// bytes ("git~1", "gitmod~1", "gi7eba~1", "~1234567"). So a name whose
// first byte is ASCII but not '.', with no '~' in its first seven bytes,
// is plain, and so are nearly all names of most trees. FuzzPlainName
// holds it to specialName's checks.
func plainName(name []byte) bool {
	if len(name) == 0 || name[0] == '.' || name[0] >= utf8.RuneSelf {
		return false
	}
	if len(name) >= 8 {
		// Byte 7 set to something other than '~'.
		x := binary.LittleEndian.Uint64(name) | 0xff<<56
		return hasZeroByte(x^'~'*ones) == 0
	}
	return bytes.IndexByte(name, '~') < 0
}

// hasSlashes reports whether name holds a '/' or a '\\', reading it a
// word at a time: most names are shorter than a call to bytes.IndexByte
// costs.
func hasSlashes(name []byte) bool {
	const (
		slashes = '/' * ones
		backs   = '\\' * ones
	)
	for len(name) >= 8 {
		x := binary.LittleEndian.Uint64(name)
		if hasZeroByte(x^slashes)|hasZeroByte(x^backs) != 0 {
			return true
		}
		name = name[8:]
	}
	for _, c := range name {
		if c == '/' || c == '\\' {
			return true
		}
	}
	return false
}

// hasZeroByte is not zero if and only if a byte of x is zero; its lowest
// set bit is then the high bit of the first zero byte in little-endian
// order (the bits above it may be set by the borrow, and say nothing).
func hasZeroByte(x uint64) uint64 {
	return (x - ones) &^ x & (0x80 * ones)
}

// ones has each byte of a word 1: c*ones repeats the byte c in each.
const ones = 0x0101010101010101

// gitmodules handles an entry named .gitmodules or an alias of it.
func (c *Checker) gitmodules(f oid.Format, symlink bool, id []byte) error {
	if symlink {
		return c.report(Tree, MsgGitmodulesSymlink, "")
	}
	if c.Gitmodules != nil {
		c.Gitmodules(oid.MustFromBytes(f, id))
	}
	return nil
}

const (
	orderOK = iota
	orderUnsorted
	orderDup
)

// verifyOrder compares two consecutive tree entries in Git's tree order,
// in which a directory sorts as if its name ended in '/' (fsck.c,
// verify_ordered). Because of that implied slash a file "foo" and a
// directory "foo" need not be adjacent ("foo", "foo.c", "foo/"), so
// files that are a proper prefix of the next name, followed by a byte
// that sorts before '/', are kept on cands and each directory is
// compared with them.
func verifyOrder(aName []byte, aMode uint32, bName []byte, bMode uint32, cands *nameStack) int {
	n := min(len(aName), len(bName))
	if cmp := bytes.Compare(aName[:n], bName[:n]); cmp != 0 {
		if cmp < 0 {
			return orderOK
		}
		return orderUnsorted
	}
	var c1, c2 byte
	if n < len(aName) {
		c1 = aName[n]
	}
	if n < len(bName) {
		c2 = bName[n]
	}
	if c1 == 0 && c2 == 0 {
		return orderDup
	}
	if c1 == 0 && aMode&modeTypeMask == ModeTree {
		c1 = '/'
	}
	if c2 == 0 && bMode&modeTypeMask == ModeTree {
		c2 = '/'
	}
	switch {
	case c1 == 0 && lessThanSlash(c2):
		// a is a file and a proper prefix of b: a directory named like
		// a may still come.
		cands.push(aName)
	case c2 == '/' && lessThanSlash(c1):
		// b is a directory. In a sorted tree a candidate that is not
		// a prefix of b, or is one followed by a byte after '/', sorts
		// before b's implied slash and so before every later
		// directory: drop it.
		for {
			top, ok := cands.top()
			if !ok {
				break
			}
			if rest, ok := bytes.CutPrefix(bName, top); ok {
				if len(rest) == 0 {
					return orderDup
				}
				if lessThanSlash(rest[0]) {
					break
				}
			}
			cands.pop()
		}
	}
	if c1 < c2 {
		return orderOK
	}
	return orderUnsorted
}

// nameStack is a stack of names that stays off the heap while it holds
// few names.
type nameStack struct {
	buf  [16][]byte
	n    int
	more [][]byte // beyond buf
}

func (s *nameStack) push(name []byte) {
	if s.n < len(s.buf) {
		s.buf[s.n] = name
		s.n++
		return
	}
	s.more = append(s.more, name)
}

func (s *nameStack) top() ([]byte, bool) {
	switch {
	case len(s.more) > 0:
		return s.more[len(s.more)-1], true
	case s.n > 0:
		return s.buf[s.n-1], true
	}
	return nil, false
}

func (s *nameStack) pop() {
	switch {
	case len(s.more) > 0:
		s.more = s.more[:len(s.more)-1]
	case s.n > 0:
		s.n--
	}
}

func lessThanSlash(c byte) bool { return 0 < c && c < '/' }

// isHFSDotGit reports whether HFS+ would take name for ".git".
func isHFSDotGit(name []byte) bool { return isHFSDot(name, "git") }

// isHFSDot reports whether HFS+ would take name for "." + needle (a
// lower-case ASCII word): HFS+ folds case and ignores some zero-width
// code points, so ".GIT" and ".g\u200cit" both name ".git" there
// (utf8.c, is_hfs_dot_generic).
func isHFSDot(name []byte, needle string) bool {
	c, name := nextHFSRune(name)
	if c != '.' {
		return false
	}
	for i := 0; i < len(needle); i++ {
		c, name = nextHFSRune(name)
		if c > 127 || lowerASCII(byte(c)) != needle[i] {
			return false
		}
	}
	c, _ = nextHFSRune(name)
	return c == 0 || c == '/'
}

// nextHFSRune returns the next code point of name that HFS+ does not
// ignore, or 0 at the end of name or at invalid UTF-8 (which includes
// U+FFFE and U+FFFF for C Git). Like C Git, isHFSDot thus takes ".git"
// followed by invalid UTF-8 for ".git".
func nextHFSRune(name []byte) (rune, []byte) {
	for {
		if len(name) == 0 {
			return 0, name
		}
		r, n := utf8.DecodeRune(name)
		if (r == utf8.RuneError && n <= 1) || r == 0xfffe || r == 0xffff {
			return 0, nil
		}
		name = name[n:]
		switch r {
		case 0x200c, 0x200d, 0x200e, 0x200f, // zero-width (non-)joiner, LTR/RTL marks
			0x202a, 0x202b, 0x202c, 0x202d, 0x202e, // directional embeddings and overrides
			0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f, // deprecated format characters
			0xfeff: // zero-width no-break space
			continue
		}
		return r, name
	}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isNTFSDotGit reports whether NTFS would take the first path component
// of name (up to '/' or '\\') for ".git": case is folded, trailing spaces
// and periods and an alternate data stream (":…") are dropped, and
// "git~1" is the short name of ".git" (path.c, is_ntfs_dotgit).
func isNTFSDotGit(name []byte) bool {
	var rest []byte
	switch {
	case len(name) >= 4 && name[0] == '.' && equalFoldASCII(name[1:4], "git"):
		rest = name[4:]
	case len(name) >= 5 && equalFoldASCII(name[:3], "git") && name[3] == '~' && name[4] == '1':
		rest = name[5:]
	default:
		return false
	}
	for _, c := range rest {
		if c == '/' || c == '\\' || c == ':' {
			return true
		}
		if c != ' ' && c != '.' {
			return false
		}
	}
	return true
}

// isNTFSDotGeneric reports whether NTFS would take name for "." + word
// (a lower-case ASCII word of at least six letters): case is folded,
// trailing spaces and periods and an alternate data stream (":…") are
// dropped, and the 8.3 short names word[:6]+"~1".."~4" and
// shortPrefix+"~<digits>" (the hashed form Windows falls back to) alias
// it (path.c, is_ntfs_dot_generic).
func isNTFSDotGeneric(name []byte, word, shortPrefix string) bool {
	onlySpacesAndPeriods := func(rest []byte) bool {
		for _, c := range rest {
			if c == ':' {
				return true
			}
			if c != ' ' && c != '.' {
				return false
			}
		}
		return true
	}
	if len(name) > len(word) && name[0] == '.' && equalFoldASCII(name[1:1+len(word)], word) {
		return onlySpacesAndPeriods(name[1+len(word):])
	}
	if len(name) >= 8 && equalFoldASCII(name[:6], word[:6]) && name[6] == '~' && '1' <= name[7] && name[7] <= '4' {
		return onlySpacesAndPeriods(name[8:])
	}
	// The fall-back short name: up to six letters of shortPrefix, '~',
	// a digit 1-9, then digits, eight bytes in all.
	if len(name) < 8 {
		return false
	}
	sawTilde := false
	for i := 0; i < 8; i++ {
		switch {
		case sawTilde:
			if !isDigit(name[i]) {
				return false
			}
		case name[i] == '~':
			i++
			if i >= 8 || name[i] < '1' || name[i] > '9' {
				return false
			}
			sawTilde = true
		case i >= 6 || name[i]&0x80 != 0 || lowerASCII(name[i]) != shortPrefix[i]:
			return false
		}
	}
	return onlySpacesAndPeriods(name[8:])
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lowerASCII(b[i]) != s[i] {
			return false
		}
	}
	return true
}
