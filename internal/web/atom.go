package web

import (
	"bytes"
	"encoding/xml"
	"strings"
	"time"
)

// Atom (RFC 4287) documents, written with encoding/xml, which escapes
// every string.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Link    atomLink    `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Href string `xml:"href,attr"`
	Rel  string `xml:"rel,attr,omitempty"`
}

type atomEntry struct {
	Title   string     `xml:"title"`
	ID      string     `xml:"id"`
	Updated string     `xml:"updated"`
	Author  atomAuthor `xml:"author"`
	Link    atomLink   `xml:"link"`
	Content atomText   `xml:"content"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

// xmlText shows control characters as marks (markText: XML 1.0
// cannot hold C0 controls at all, and bidi ones would reorder what a
// reader shows) and drops the noncharacters XML cannot hold;
// encoding/xml escapes the rest.
func xmlText(s string) string {
	s = markText(s)
	if !strings.ContainsAny(s, "\uFFFE\uFFFF") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, s)
}

// base is the site's URL as the visitor reached it, for the absolute
// links a feed needs.
func (rq *request) base() string {
	scheme := "http"
	if rq.r.TLS != nil || rq.r.Header.Get("X-Gotd-Scheme") == "https" {
		scheme = "https"
	}
	return scheme + "://" + host(rq.r) + portOf(rq.r.Host)
}

// portOf is ":PORT" of a Host header, or "".
func portOf(h string) string {
	i := strings.LastIndexByte(h, ':')
	if i < 0 || strings.HasSuffix(h, "]") {
		return ""
	}
	p := h[i+1:]
	for _, c := range p {
		if c < '0' || c > '9' {
			return ""
		}
	}
	if p == "" || len(p) > 5 {
		return ""
	}
	return ":" + p
}

// sendFeed sends a feed.
func (rq *request) sendFeed(f *atomFeed, immutable bool) error {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(f); err != nil {
		return err
	}
	rq.send("application/atom+xml; charset=utf-8", buf.Bytes(), immutable, time.Time{})
	return nil
}

// atomLog is the feed of a branch's newest commits.
func (rq *request) atomLog() error {
	rp := rq.repo
	res, err := rp.resolve(rq.ctx, rq.rt.rev)
	if err != nil {
		return err
	}
	base := rq.base()
	page := base + pageURL(rp.Name, actLog, revLabel(rq.rt.rev), "")
	f := &atomFeed{Title: xmlText(rp.Name + ": " + revLabel(rq.rt.rev)), ID: page, Link: atomLink{Href: page, Rel: "alternate"}}
	err = rp.history(rq.ctx, res.id, "", 0, func(c *commit) bool {
		u := base + pageURL(rp.Name, actCommit, c.ID.String(), "")
		t := when(c.Committer).UTC().Format(time.RFC3339)
		if f.Updated == "" {
			f.Updated = t
		}
		f.Entries = append(f.Entries, atomEntry{
			Title: xmlText(title(c.Message)), ID: u, Updated: t,
			Author:  atomAuthor{Name: xmlText(text(c.Author.Name))},
			Link:    atomLink{Href: u, Rel: "alternate"},
			Content: atomText{Type: "text", Text: xmlText(clip(text(c.Message), 4096))},
		})
		return len(f.Entries) < logPage
	})
	if err != nil {
		return err
	}
	if f.Updated == "" {
		f.Updated = time.Unix(0, 0).UTC().Format(time.RFC3339)
	}
	return rq.sendFeed(f, res.full)
}

// atomTags is the feed of the newest tags.
func (rq *request) atomTags() error {
	rp := rq.repo
	rs, _, err := rp.refs("refs/tags/", maxRefs)
	if err != nil {
		return err
	}
	rs, _ = newest(rs, logPage, false)
	base := rq.base()
	page := base + repoURL(rp.Name) + actTags
	f := &atomFeed{Title: xmlText(rp.Name + ": tags"), ID: page, Link: atomLink{Href: page, Rel: "alternate"},
		Updated: time.Unix(0, 0).UTC().Format(time.RFC3339)}
	for i, r := range rs {
		u := base + pageURL(rp.Name, actTag, r.Name, "")
		t := r.When.UTC().Format(time.RFC3339)
		if i == 0 {
			f.Updated = t
		}
		e := atomEntry{Title: xmlText(r.Name), ID: u, Updated: t, Link: atomLink{Href: u, Rel: "alternate"},
			Content: atomText{Type: "text", Text: xmlText(r.Title)}}
		if r.Tag != nil {
			e.Content.Text = xmlText(clip(text(r.Tag.Message), 4096))
			if r.Tag.Tagger != nil {
				e.Author.Name = xmlText(text(r.Tag.Tagger.Name))
			}
		}
		f.Entries = append(f.Entries, e)
	}
	return rq.sendFeed(f, false)
}
