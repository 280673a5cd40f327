package object

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gotd/internal/git/oid"
	"gotd/internal/gittest"
)

// checkCase is one object for TestCheckAgainstGit. In data, "<T>" is the
// hexadecimal id of the empty tree, "<X>" that of another object, "<R>"
// the raw bytes of a non-null id and "<Z>" those of the null id, each in
// the format under test. Objects that name <X> must agree on its type
// (commit), or git fsck reports the disagreement.
type checkCase struct {
	name  string
	t     Type
	data  string
	want  MsgID   // the error Check must return; 0 for none
	warns []MsgID // the problems below error severity Check must report
}

const (
	okAuthor    = "author A U Thor <a@example.com> 1700000000 +0100\n"
	okCommitter = "committer C O Mitter <c@example.com> 1700000000 -0130\n"
	okTagger    = "tagger T Agger <t@example.com> 1700000000 +0000\n"
)

// commitWith returns a commit whose author line is "author " + ident.
func commitWith(ident string) string {
	return "tree <T>\nauthor " + ident + "\n" + okCommitter + "\nmsg\n"
}

var checkCases = []checkCase{
	// Commits.
	{name: "commit minimal", t: Commit, data: "tree <T>\n" + okAuthor + okCommitter + "\nmessage\n"},
	{name: "commit no message", t: Commit, data: "tree <T>\n" + okAuthor + okCommitter},
	{name: "commit empty message", t: Commit, data: "tree <T>\n" + okAuthor + okCommitter + "\n"},
	{name: "commit parents and extras", t: Commit, data: "tree <T>\nparent <X>\nparent <X>\n" + okAuthor + okCommitter +
		"encoding ISO-8859-1\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\nx-custom value\n\nmsg\n"},
	{name: "commit upper-case tree id", t: Commit, data: "tree <TU>\n" + okAuthor + okCommitter + "\nm\n"},
	{name: "commit blanks before date", t: Commit, data: commitWith("A <a@b>  \t 1 +0000")},
	{name: "commit empty name", t: Commit, data: commitWith(" <a@b> 1 +0000")},
	{name: "commit empty email", t: Commit, data: commitWith("A <> 1 +0000")},
	{name: "commit date zero", t: Commit, data: commitWith("A <a@b> 0 +0000")},
	{name: "commit max date", t: Commit, data: commitWith("A <a@b> 9223372036854775807 +0000")},
	{name: "commit odd time zone", t: Commit, data: commitWith("A <a@b> 1 +9999")},
	{name: "commit empty", t: Commit, data: "", want: MsgUnterminatedHeader},
	{name: "commit unterminated header", t: Commit, data: "tree <T>\n" + okAuthor + strings.TrimSuffix(okCommitter, "\n"), want: MsgUnterminatedHeader},
	{name: "commit NUL in header", t: Commit, data: "tree <T>\n" + okAuthor + "committer C <c@d> 1\x00 +0000\n\nm\n", want: MsgNulInHeader},
	{name: "commit NUL in message", t: Commit, data: "tree <T>\n" + okAuthor + okCommitter + "\nm\x00sg\n", warns: []MsgID{MsgNulInCommit}},
	{name: "commit missing tree", t: Commit, data: "parent <X>\n" + okAuthor + okCommitter + "\nm\n", want: MsgMissingTree},
	{name: "commit tree not first", t: Commit, data: okAuthor + "tree <T>\n" + okCommitter + "\nm\n", want: MsgMissingTree},
	{name: "commit bad tree hex", t: Commit, data: "tree <G>\n" + okAuthor + okCommitter + "\nm\n", want: MsgBadTreeSha1},
	{name: "commit short tree id", t: Commit, data: "tree <S>\n" + okAuthor + okCommitter + "\nm\n", want: MsgBadTreeSha1},
	{name: "commit tree id with trailer", t: Commit, data: "tree <T> \n" + okAuthor + okCommitter + "\nm\n", want: MsgBadTreeSha1},
	{name: "commit bad parent", t: Commit, data: "tree <T>\nparent <G>\n" + okAuthor + okCommitter + "\nm\n", want: MsgBadParentSha1},
	{name: "commit short parent", t: Commit, data: "tree <T>\nparent <S>\n" + okAuthor + okCommitter + "\nm\n", want: MsgBadParentSha1},
	{name: "commit missing author", t: Commit, data: "tree <T>\n" + okCommitter + "\nm\n", want: MsgMissingAuthor},
	{name: "commit blank after tree", t: Commit, data: "tree <T>\n\n" + okAuthor + okCommitter, want: MsgMissingAuthor},
	{name: "commit two authors", t: Commit, data: "tree <T>\n" + okAuthor + okAuthor + okCommitter + "\nm\n", want: MsgMultipleAuthors},
	{name: "commit missing committer", t: Commit, data: "tree <T>\n" + okAuthor + "\nm\n", want: MsgMissingCommitter},
	{name: "commit committer after extra", t: Commit, data: "tree <T>\n" + okAuthor + "encoding x\n" + okCommitter + "\nm\n", want: MsgMissingCommitter},
	{name: "ident starts with <", t: Commit, data: commitWith("<a@b> 1 +0000"), want: MsgMissingNameBeforeEmail},
	{name: "ident > in name", t: Commit, data: commitWith("A> <a@b> 1 +0000"), want: MsgBadName},
	{name: "ident no email", t: Commit, data: commitWith("A a@b 1 +0000"), want: MsgMissingEmail},
	{name: "ident empty", t: Commit, data: commitWith(""), want: MsgMissingEmail},
	{name: "ident no space before email", t: Commit, data: commitWith("A<a@b> 1 +0000"), want: MsgMissingSpaceBeforeEmail},
	{name: "ident tab before email", t: Commit, data: commitWith("A\t<a@b> 1 +0000"), want: MsgMissingSpaceBeforeEmail},
	{name: "ident < in email", t: Commit, data: commitWith("A <a<b> 1 +0000"), want: MsgBadEmail},
	{name: "ident unclosed email", t: Commit, data: commitWith("A <a@b 1 +0000"), want: MsgBadEmail},
	{name: "ident no space before date", t: Commit, data: commitWith("A <a@b>1 +0000"), want: MsgMissingSpaceBeforeDate},
	{name: "ident nothing after email", t: Commit, data: commitWith("A <a@b>"), want: MsgMissingSpaceBeforeDate},
	{name: "ident no date", t: Commit, data: commitWith("A <a@b> +0000"), want: MsgBadDate},
	{name: "ident date not a number", t: Commit, data: commitWith("A <a@b> x1 +0000"), want: MsgBadDate},
	{name: "ident date then end", t: Commit, data: commitWith("A <a@b> 1"), want: MsgBadDate},
	{name: "ident date suffix", t: Commit, data: commitWith("A <a@b> 1x +0000"), want: MsgBadDate},
	{name: "ident space only", t: Commit, data: commitWith("A <a@b> "), want: MsgBadDate},
	{name: "ident zero-padded date", t: Commit, data: commitWith("A <a@b> 0123 +0000"), want: MsgZeroPaddedDate},
	{name: "ident double zero date", t: Commit, data: commitWith("A <a@b> 00 +0000"), want: MsgZeroPaddedDate},
	{name: "ident date 2^63", t: Commit, data: commitWith("A <a@b> 9223372036854775808 +0000"), want: MsgBadDateOverflow},
	{name: "ident date 2^64", t: Commit, data: commitWith("A <a@b> 18446744073709551616 +0000"), want: MsgBadDateOverflow},
	{name: "ident huge date", t: Commit, data: commitWith("A <a@b> 99999999999999999999999999 +0000"), want: MsgBadDateOverflow},
	{name: "ident short zone", t: Commit, data: commitWith("A <a@b> 1 +000"), want: MsgBadTimezone},
	{name: "ident unsigned zone", t: Commit, data: commitWith("A <a@b> 1 0000"), want: MsgBadTimezone},
	{name: "ident zone trailer", t: Commit, data: commitWith("A <a@b> 1 +0000 "), want: MsgBadTimezone},
	{name: "ident long zone", t: Commit, data: commitWith("A <a@b> 1 +00000"), want: MsgBadTimezone},
	{name: "ident zone letter", t: Commit, data: commitWith("A <a@b> 1 +00a0"), want: MsgBadTimezone},
	{name: "ident two spaces before zone", t: Commit, data: commitWith("A <a@b> 1  +0000"), want: MsgBadTimezone},
	{name: "committer bad", t: Commit, data: "tree <T>\n" + okAuthor + "committer C <c@d> 1 +00\n\nm\n", want: MsgBadTimezone},

	// Tags.
	{name: "tag", t: Tag, data: "object <X>\ntype commit\ntag v1.0\n" + okTagger + "\nrelease\n"},
	{name: "tag of tree no message", t: Tag, data: "object <T>\ntype tree\ntag t\n" + okTagger},
	{name: "tag upper-case id", t: Tag, data: "object <TU>\ntype tree\ntag t\n" + okTagger + "\nm\n"},
	{name: "tag no tagger", t: Tag, data: "object <X>\ntype commit\ntag t\n\nm\n", warns: []MsgID{MsgMissingTaggerEntry}},
	{name: "tag no tagger no message", t: Tag, data: "object <X>\ntype commit\ntag t\n", warns: []MsgID{MsgMissingTaggerEntry}},
	{name: "tag extra header", t: Tag, data: "object <X>\ntype commit\ntag t\n" + okTagger + "x-extra 1\n\nm\n"},
	{name: "tag empty", t: Tag, data: "", want: MsgUnterminatedHeader},
	{name: "tag NUL in header", t: Tag, data: "object <X>\ntype commit\ntag t\x00\n" + okTagger + "\nm\n", want: MsgNulInHeader},
	{name: "tag NUL in message", t: Tag, data: "object <X>\ntype commit\ntag t\n" + okTagger + "\nm\x00\n"},
	{name: "tag missing object", t: Tag, data: "type commit\ntag t\n" + okTagger + "\nm\n", want: MsgMissingObject},
	{name: "tag bad object", t: Tag, data: "object <G>\ntype commit\ntag t\n" + okTagger + "\nm\n", want: MsgBadObjectSha1},
	{name: "tag short object", t: Tag, data: "object <S>\ntype commit\ntag t\n" + okTagger + "\nm\n", want: MsgBadObjectSha1},
	{name: "tag missing type", t: Tag, data: "object <X>\ntag t\n" + okTagger + "\nm\n", want: MsgMissingTypeEntry},
	{name: "tag bad type", t: Tag, data: "object <X>\ntype commits\ntag t\n" + okTagger + "\nm\n", want: MsgBadType},
	{name: "tag delta type", t: Tag, data: "object <X>\ntype ofs-delta\ntag t\n" + okTagger + "\nm\n", want: MsgBadType},
	{name: "tag missing tag", t: Tag, data: "object <X>\ntype commit\n" + okTagger + "\nm\n", want: MsgMissingTagEntry},
	{name: "tag bad tagger", t: Tag, data: "object <X>\ntype commit\ntag t\ntagger T <t> 01 +0000\n\nm\n", want: MsgZeroPaddedDate},
	{name: "tag tagger no email", t: Tag, data: "object <X>\ntype commit\ntag t\ntagger T\n\nm\n", want: MsgMissingEmail},

	// Trees. Entries are "mode name\x00<R>" and the like.
	{name: "tree empty", t: Tree, data: ""},
	{name: "tree all modes", t: Tree, data: "100644 a\x00<R>100755 b\x00<R>120000 c\x00<R>40000 d\x00<R>160000 e\x00<R>"},
	{name: "tree dir sorts with slash", t: Tree, data: "100644 a-\x00<R>40000 a\x00<R>100644 a0\x00<R>"},
	{name: "tree dir sorts with slash wrong", t: Tree, data: "40000 a\x00<R>100644 a-\x00<R>", want: MsgTreeNotSorted},
	{name: "tree not sorted", t: Tree, data: "100644 b\x00<R>100644 a\x00<R>", want: MsgTreeNotSorted},
	{name: "tree prefix order", t: Tree, data: "100644 ab\x00<R>100644 a\x00<R>", want: MsgTreeNotSorted},
	{name: "tree duplicate", t: Tree, data: "100644 a\x00<R>100644 a\x00<R>", want: MsgDuplicateEntries},
	{name: "tree duplicate file dir", t: Tree, data: "100644 a\x00<R>40000 a\x00<R>", want: MsgDuplicateEntries},
	{name: "tree duplicate dir file", t: Tree, data: "40000 a\x00<R>100644 a\x00<R>", want: MsgDuplicateEntries},
	{name: "tree duplicate apart", t: Tree, data: "100644 foo\x00<R>100644 foo.bar\x00<R>100644 foo.bar.baz\x00<R>40000 foo.bar\x00<R>40000 foo\x00<R>", want: MsgDuplicateEntries},
	{name: "tree duplicate apart outer", t: Tree, data: "100644 foo\x00<R>100644 foo-x\x00<R>100644 foo.bar\x00<R>40000 foo\x00<R>", want: MsgDuplicateEntries},
	{name: "tree no duplicate apart", t: Tree, data: "100644 foo\x00<R>100644 foo.bar\x00<R>40000 foo.bar.baz\x00<R>100644 foo0\x00<R>"},
	{name: "tree empty name", t: Tree, data: "100644 \x00<R>", want: MsgBadTree},
	{name: "tree empty mode", t: Tree, data: " a\x00<R>", want: MsgBadTree},
	{name: "tree bad mode", t: Tree, data: "100648 a\x00<R>", want: MsgBadTree},
	{name: "tree no name", t: Tree, data: "100644", want: MsgBadTree},
	{name: "tree no NUL", t: Tree, data: "100644 a", want: MsgBadTree},
	{name: "tree truncated id", t: Tree, data: "100644 a\x00abc", want: MsgBadTree},
	{name: "tree truncated second", t: Tree, data: "100644 a\x00<R>100644 b\x00abc", want: MsgBadTree},
	{name: "tree zero-padded mode", t: Tree, data: "040000 a\x00<R>", warns: []MsgID{MsgZeroPaddedFilemode}},
	{name: "tree group-writable", t: Tree, data: "100664 a\x00<R>"},
	{name: "tree bad filemode", t: Tree, data: "100600 a\x00<R>", warns: []MsgID{MsgBadFilemode}},
	{name: "tree null id", t: Tree, data: "100644 a\x00<Z>", warns: []MsgID{MsgNullSha1}},
	{name: "tree full path", t: Tree, data: "100644 a/b\x00<R>", warns: []MsgID{MsgFullPathname}},
	{name: "tree dot", t: Tree, data: "40000 .\x00<R>", warns: []MsgID{MsgHasDot}},
	{name: "tree dotdot", t: Tree, data: "40000 ..\x00<R>", warns: []MsgID{MsgHasDotdot}},
	{name: "tree .git", t: Tree, data: "40000 .git\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .GIT", t: Tree, data: "100644 .GIT\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .Git.", t: Tree, data: "100644 .Git.\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .git space", t: Tree, data: "100644 .git \x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .git dots spaces", t: Tree, data: "100644 .git. . \x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree git~1", t: Tree, data: "100644 GIT~1\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree git~2", t: Tree, data: "100644 git~2\x00<R>"},
	{name: "tree .git backslash", t: Tree, data: "100644 .git\\foo\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree backslash .git", t: Tree, data: "100644 foo\\.git\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .git stream", t: Tree, data: "100644 .git:x\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .gitx", t: Tree, data: "100644 .gitx\x00<R>"},
	{name: "tree .git zero-width", t: Tree, data: "100644 .g\u200cit\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .GIT bom", t: Tree, data: "100644 \ufeff.GIT\u200f\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .git invalid utf8", t: Tree, data: "100644 .git\xff\x00<R>", warns: []MsgID{MsgHasDotgit}},
	{name: "tree .gi invalid utf8", t: Tree, data: "100644 .gi\xfft\x00<R>"},
	{name: "tree .gitmodules file", t: Tree, data: "100644 .gitmodules\x00<R>"},
	{name: "tree .gitmodules symlink", t: Tree, data: "120000 .gitmodules\x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree .GITMODULES. symlink", t: Tree, data: "120000 .GITMODULES. \x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree .gitmodules stream symlink", t: Tree, data: "120000 .gitmodules:$DATA\x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree gitmod~1 symlink", t: Tree, data: "120000 GITMOD~1\x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree gitmod~5 symlink", t: Tree, data: "120000 gitmod~5\x00<R>"},
	{name: "tree gi7eba~9 symlink", t: Tree, data: "120000 gi7eba~9\x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree gi7eb~12 symlink", t: Tree, data: "120000 gi7eb~12\x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree .gitmodules hfs symlink", t: Tree, data: "120000 .gitmodu\u200dles\x00<R>", want: MsgGitmodulesSymlink},
	{name: "tree backslash .gitmodules symlink", t: Tree, data: "120000 a\\.gitmodules\x00<R>", want: MsgGitmodulesSymlink, warns: nil},
	{name: "tree .gitignore symlink", t: Tree, data: "120000 .gitignore\x00<R>", warns: []MsgID{MsgGitignoreSymlink}},
	{name: "tree .gitattributes symlink", t: Tree, data: "120000 .gitattributes\x00<R>", warns: []MsgID{MsgGitattributesSymlink}},
	{name: "tree .mailmap symlink", t: Tree, data: "120000 .mailmap\x00<R>", warns: []MsgID{MsgMailmapSymlink}},
	{name: "tree .mailmap file", t: Tree, data: "100644 .mailmap\x00<R>"},
	{name: "tree many warnings", t: Tree, data: "040000 .\x00<R>100644 .git\x00<Z>100644 a/b\x00<R>",
		warns: []MsgID{MsgNullSha1, MsgFullPathname, MsgHasDot, MsgHasDotgit, MsgZeroPaddedFilemode}},
}

// expand replaces the placeholders of a checkCase for format f.
func expand(f oid.Format, s string) []byte {
	empty, _ := ID(f, Tree, nil)
	other, _ := ID(f, Blob, []byte("other\n"))
	raw, _ := ID(f, Blob, []byte("raw\n"))
	r := strings.NewReplacer(
		"<T>", empty.String(),
		"<TU>", strings.ToUpper(empty.String()),
		"<X>", other.String(),
		"<G>", strings.Repeat("g", f.HexSize()),
		"<S>", other.String()[:f.HexSize()-2],
		"<R>", string(raw.Bytes()),
		"<Z>", string(oid.Zero(f).Bytes()),
	)
	return []byte(r.Replace(s))
}

// checkVerdict is what Check or git fsck said about one object.
type checkVerdict struct {
	err   MsgID // 0: accepted; msgUnknown: rejected without a message id
	warns []MsgID
}

const msgUnknown MsgID = 255

func ourVerdict(f oid.Format, t Type, data []byte) checkVerdict {
	var v checkVerdict
	c := Checker{Warn: func(p *Problem) { v.warns = append(v.warns, p.ID) }}
	err := c.Check(f, t, data)
	var p *Problem
	switch {
	case errors.As(err, &p):
		v.err = p.ID
	case err != nil:
		v.err = msgUnknown
	}
	return v
}

var (
	// "broken links" (an entry naming an object of another type) is
	// about connectivity, not the object's own content, and has no id.
	fsckProblem = regexp.MustCompile(`^(error|warning) in [a-z]+ ([0-9a-f]+): ([a-z][A-Za-z0-9]*): `)
	fsckParse   = regexp.MustCompile(`^error: ([0-9a-f]{40,64}): object (?:could not be parsed|corrupt)`)
)

// gitVerdicts runs git fsck on the repository and returns its verdict on
// each object it complained about.
func gitVerdicts(t *testing.T, dir string) map[string]*checkVerdict {
	t.Helper()
	// fsck exits non-zero when it finds errors and writes its findings
	// to stderr; both are expected here.
	cmd := exec.Command("git", "fsck", "--full", "--no-dangling", "--no-progress")
	cmd.Dir = dir
	cmd.Env = gittest.Env(t)
	all, _ := cmd.CombinedOutput()
	got := map[string]*checkVerdict{}
	get := func(id string) *checkVerdict {
		if got[id] == nil {
			got[id] = &checkVerdict{}
		}
		return got[id]
	}
	sc := bufio.NewScanner(bytes.NewReader(all))
	for sc.Scan() {
		line := sc.Text()
		if m := fsckParse.FindStringSubmatch(line); m != nil {
			v := get(m[1])
			if v.err == 0 {
				v.err = msgUnknown
			}
			continue
		}
		m := fsckProblem.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id, err := ParseMsgID(m[3])
		if err != nil {
			// Problems C Git finds across objects (.gitmodules
			// blobs) are not this package's.
			id = msgUnknown
		}
		v := get(m[2])
		if m[1] == "warning" {
			v.warns = append(v.warns, id)
		} else if v.err == 0 || v.err == msgUnknown {
			v.err = id
		}
	}
	return got
}

// TestCheckAgainstGit writes every case as a loose object with
// `git hash-object --literally` and compares Check's verdict, and the
// warnings it reports, with those of `git fsck --full` and with the
// expectation written in the table.
func TestCheckAgainstGit(t *testing.T) {
	for _, format := range []oid.Format{oid.SHA1, oid.SHA256} {
		t.Run(format.String(), func(t *testing.T) {
			dir := gittest.InitBare(t, format.String())
			ids := make([]string, len(checkCases))
			for i, tc := range checkCases {
				data := expand(format, tc.data)
				ids[i] = strings.TrimSpace(gittest.GitInput(t, dir, data,
					"hash-object", "--literally", "-t", tc.t.String(), "-w", "--stdin"))
			}
			gitSaid := gitVerdicts(t, dir)
			for i, tc := range checkCases {
				data := expand(format, tc.data)
				ours := ourVerdict(format, tc.t, data)
				if ours.err != tc.want {
					t.Errorf("%s: Check: got %v; want %v", tc.name, ours.err, tc.want)
				}
				if !slices.Equal(ours.warns, tc.warns) {
					t.Errorf("%s: warnings: got %v; want %v", tc.name, ours.warns, tc.warns)
				}
				g := gitSaid[ids[i]]
				if g == nil {
					g = &checkVerdict{}
				}
				switch {
				case (g.err != 0) != (ours.err != 0):
					t.Errorf("%s: Check says %v, git fsck says %v", tc.name, ours.err, g.err)
				case g.err != 0 && g.err != msgUnknown && g.err != ours.err:
					t.Errorf("%s: Check says %v, git fsck says %v", tc.name, ours.err, g.err)
				}
				if g.err == 0 {
					gw := slices.Clone(g.warns)
					ow := slices.Clone(ours.warns)
					slices.Sort(gw)
					slices.Sort(ow)
					if !slices.Equal(gw, ow) {
						t.Errorf("%s: warnings: Check says %v, git fsck says %v", tc.name, ow, gw)
					}
				}
				// Whatever Check accepts, the matching parser must read.
				if ours.err == 0 {
					if err := parseAs(format, tc.t, data); err != nil {
						t.Errorf("%s: Check accepts it but parsing fails: %v", tc.name, err)
					}
				}
			}
		})
	}
}

// parseAs parses data as an object of type t with this package's reader.
func parseAs(f oid.Format, t Type, data []byte) error {
	switch t {
	case Commit:
		if _, err := ParseCommit(f, data); err != nil {
			return err
		}
		_, _, _, err := CommitLinks(f, data, nil)
		return err
	case Tag:
		_, err := ParseTag(f, data)
		return err
	case Tree:
		it := NewTreeIter(f, data)
		for {
			if _, ok := it.Next(); !ok {
				break
			}
		}
		return it.Err()
	}
	return nil
}

func TestCheckProblemMessage(t *testing.T) {
	err := Check(oid.SHA1, Commit, expand(oid.SHA1, commitWith("A <a@b> x +0000")))
	want := "object: commit: bad date in author line (badDate)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %s", err, want)
	}
	err = Check(oid.SHA1, Tree, []byte("100644 b\x00aaaaaaaaaaaaaaaaaaaa100644 a\x00aaaaaaaaaaaaaaaaaaaa"))
	want = "object: tree: entries not sorted (treeNotSorted)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %s", err, want)
	}
}

func TestCheckSeverities(t *testing.T) {
	dotgit := []byte("100644 .git\x00aaaaaaaaaaaaaaaaaaaa")
	group := []byte("100664 a\x00aaaaaaaaaaaaaaaaaaaa")
	badDate := expand(oid.SHA1, commitWith("A <a@b> 01 +0000"))
	noTree := []byte("author A <a@b> 1 +0000\n")
	for _, tc := range []struct {
		name string
		c    Checker
		t    Type
		data []byte
		want MsgID
	}{
		{"default warns .git", Checker{}, Tree, dotgit, 0},
		{"strict rejects .git", Checker{Strict: true}, Tree, dotgit, MsgHasDotgit},
		{"raised .git", Checker{Severity: map[MsgID]Severity{MsgHasDotgit: SevError}}, Tree, dotgit, MsgHasDotgit},
		{"strict keeps infos", Checker{Strict: true}, Tag, []byte("object aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ntype blob\ntag t\n"), 0},
		{"strict group-writable", Checker{Strict: true}, Tree, group, 0},
		{"demoted date", Checker{Severity: map[MsgID]Severity{MsgZeroPaddedDate: SevWarn}}, Commit, badDate, 0},
		{"ignored date", Checker{Severity: map[MsgID]Severity{MsgZeroPaddedDate: SevIgnore}}, Commit, badDate, 0},
		{"fatal not demoted", Checker{Severity: map[MsgID]Severity{MsgMissingTree: SevIgnore}}, Commit, noTree, MsgMissingTree},
	} {
		err := tc.c.Check(oid.SHA1, tc.t, tc.data)
		var got MsgID
		if p := (*Problem)(nil); errors.As(err, &p) {
			got = p.ID
		} else if err != nil {
			t.Fatalf("%s: unexpected error %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
	// Strict mode reports the group-writable mode as the info it is.
	var warns []MsgID
	c := Checker{Strict: true, Warn: func(p *Problem) { warns = append(warns, p.ID) }}
	c.Check(oid.SHA1, Tree, group)
	if !slices.Equal(warns, []MsgID{MsgBadFilemode}) {
		t.Errorf("strict group-writable warnings: got %v; want [badFilemode]", warns)
	}
}

func TestCheckBadArguments(t *testing.T) {
	if err := Check(0, Commit, nil); err == nil {
		t.Error("Check with no format: got nil; want error")
	}
	for _, typ := range []Type{Invalid, OfsDelta, RefDelta, 5, 9} {
		if err := Check(oid.SHA1, typ, nil); err == nil {
			t.Errorf("Check type %v: got nil; want error", typ)
		}
	}
	if err := Check(oid.SHA1, Blob, []byte("\x00anything")); err != nil {
		t.Errorf("Check blob: got %v; want nil", err)
	}
}

func TestMsgIDNames(t *testing.T) {
	for m := MsgID(1); m < numMsgIDs; m++ {
		got, err := ParseMsgID(strings.ToLower(m.String()))
		if err != nil || got != m {
			t.Errorf("ParseMsgID(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
		if m.DefaultSeverity() > SevError {
			t.Errorf("%v: default severity %d out of range", m, m.DefaultSeverity())
		}
	}
	if _, err := ParseMsgID("noSuchThing"); err == nil {
		t.Error("ParseMsgID(noSuchThing): got nil error")
	}
}

func TestGitmodulesCallback(t *testing.T) {
	raw := strings.Repeat("b", 20)
	var got []string
	c := Checker{Gitmodules: func(id oid.ID) { got = append(got, id.String()) }}
	data := []byte("100644 .gitmodules\x00" + raw + "100644 A\\GITMOD~1\x00" + raw)
	// Sorted: '.' sorts before 'A'. The second name is an NTFS alias
	// of .gitmodules after its backslash.
	if err := c.Check(oid.SHA1, Tree, data); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("Gitmodules called %d times; want 2", len(got))
	}
}

// TestCheckRealObjects runs Check and the parsers over every object of
// generated repositories, which git fsck accepts.
func TestCheckRealObjects(t *testing.T) {
	for _, format := range []oid.Format{oid.SHA1, oid.SHA256} {
		t.Run(format.String(), func(t *testing.T) {
			dir := gittest.InitBare(t, format.String())
			gittest.Generate(t, dir, gittest.History{Commits: 30, Branches: 3, Files: 12})
			addSpecialObjects(t, dir)
			gittest.Git(t, dir, "fsck", "--full", "--strict")
			n := 0
			forEachObject(t, dir, func(id string, typ Type, data []byte) {
				n++
				if err := Check(format, typ, data); err != nil {
					t.Errorf("%s %s: %v", typ, id, err)
				}
				var strict Checker
				strict.Strict = true
				if err := strict.Check(format, typ, data); err != nil {
					t.Errorf("%s %s strict: %v", typ, id, err)
				}
				if err := parseAs(format, typ, data); err != nil {
					t.Errorf("%s %s: %v", typ, id, err)
				}
				checkParsed(t, format, id, typ, data)
			})
			if n < 100 {
				t.Errorf("checked %d objects; want at least 100", n)
			}
		})
	}
}

// addSpecialObjects adds a signed-looking commit with an encoding and a
// merge with a mergetag header, made the way C Git makes them.
func addSpecialObjects(t *testing.T, dir string) {
	t.Helper()
	tree := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main^{tree}"))
	head := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "main"))
	tag := gittest.Git(t, dir, "cat-file", "tag", "v1.0")
	var b strings.Builder
	fmt.Fprintf(&b, "tree %s\nparent %s\nparent %s\n", tree, head, strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "topic1")))
	b.WriteString("author A U Thor <author@example.com> 1700000000 +0000\n")
	b.WriteString("committer C O Mitter <committer@example.com> 1700000000 +0000\n")
	b.WriteString("encoding ISO-8859-1\n")
	b.WriteString("mergetag " + strings.ReplaceAll(strings.TrimSuffix(tag, "\n"), "\n", "\n ") + "\n")
	b.WriteString("gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n")
	b.WriteString("\nmerge with a tag\n\nand a body\n")
	id := strings.TrimSpace(gittest.GitInput(t, dir, []byte(b.String()), "hash-object", "-t", "commit", "-w", "--stdin"))
	gittest.Git(t, dir, "update-ref", "refs/heads/special", id)
}

// forEachObject reads every object of the repository with
// `git cat-file --batch`.
func forEachObject(t *testing.T, dir string, fn func(id string, typ Type, data []byte)) {
	t.Helper()
	out := gittest.Git(t, dir, "cat-file", "--batch-all-objects", "--batch")
	r := bufio.NewReader(strings.NewReader(out))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("cat-file: bad line %q", line)
		}
		typ, err := ParseType([]byte(f[1]))
		if err != nil {
			t.Fatal(err)
		}
		size, _ := strconv.Atoi(f[2])
		data := make([]byte, size+1)
		if _, err := io.ReadFull(r, data); err != nil {
			t.Fatal(err)
		}
		fn(f[0], typ, data[:size])
	}
}

// checkParsed compares what the parsers extract with what git says.
func checkParsed(t *testing.T, f oid.Format, id string, typ Type, data []byte) {
	t.Helper()
	switch typ {
	case Commit:
		c, err := ParseCommit(f, data)
		if err != nil {
			return
		}
		tree, parents, when, err := CommitLinks(f, data, nil)
		if err != nil || tree != c.Tree || !slices.Equal(parents, c.Parents) || when != c.Committer.When {
			t.Errorf("commit %s: CommitLinks = %v %v %d %v; ParseCommit = %v %v %d", id, tree, parents, when, err, c.Tree, c.Parents, c.Committer.When)
		}
		// Reassemble the commit from its parts.
		var b bytes.Buffer
		fmt.Fprintf(&b, "tree %s\n", c.Tree)
		for _, p := range c.Parents {
			fmt.Fprintf(&b, "parent %s\n", p)
		}
		fmt.Fprintf(&b, "author %s\ncommitter %s\n", c.Author.Raw, c.Committer.Raw)
		if c.Encoding != nil {
			fmt.Fprintf(&b, "encoding %s\n", c.Encoding)
		}
		for _, e := range c.Extra {
			fmt.Fprintf(&b, "%s\n", e)
		}
		if c.Message != nil {
			b.WriteString("\n")
			b.Write(c.Message)
		}
		if !bytes.Equal(b.Bytes(), data) {
			t.Errorf("commit %s: reassembled\n%s\nwant\n%s", id, b.Bytes(), data)
		}
		if len(c.Author.Name) == 0 || len(c.Committer.Email) == 0 || c.Committer.When < 1700000000 {
			t.Errorf("commit %s: author %q committer %q", id, c.Author.Name, c.Committer.Email)
		}
	case Tag:
		tg, err := ParseTag(f, data)
		if err != nil {
			return
		}
		if tg.Tagger == nil || string(tg.Tagger.Email) != "tagger@example.com" || !tg.Type.IsBase() || len(tg.Name) == 0 {
			t.Errorf("tag %s: parsed %+v", id, tg)
		}
	case Tree:
		it := NewTreeIter(f, data)
		var b []byte
		for {
			e, ok := it.Next()
			if !ok {
				break
			}
			b = AppendTreeEntry(b, e.Mode, e.Name, e.ID)
		}
		if !bytes.Equal(b, data) {
			t.Errorf("tree %s: re-encoded tree differs", id)
		}
	}
}

func TestCheckAllocs(t *testing.T) {
	data := expand(oid.SHA1, "100644 a\x00<R>100644 b\x00<R>100644 c.d\x00<R>40000 c\x00<R>100644 c0\x00<R>")
	commit := expand(oid.SHA1, "tree <T>\nparent <X>\n"+okAuthor+okCommitter+"\nmsg\n")
	tag := expand(oid.SHA1, "object <X>\ntype commit\ntag v1\n"+okTagger+"\nmsg\n")
	allocs := testing.AllocsPerRun(100, func() {
		if Check(oid.SHA1, Tree, data) != nil || Check(oid.SHA1, Commit, commit) != nil || Check(oid.SHA1, Tag, tag) != nil {
			panic("check failed")
		}
	})
	if allocs != 0 {
		t.Errorf("Check of valid objects: got %v allocations; want 0", allocs)
	}
}
