package receive

import (
	"bytes"
	"fmt"
	"strings"

	"gotd/internal/protocol/pktline"
	"gotd/internal/protocol/wire"
)

// report sends the outcome of the push (gitprotocol-pack(5),
// "Report Status"; report-status-v2 adds the "option" lines of a
// rebased update: where the branch is, old-oid..new-oid): "unpack ok" or
// "unpack <reason>", a line per command in request order, a flush.
// With side-band-64k the report travels inside band 1, and a flush
// outside ends the stream, as C Git's receive-pack ends it even
// without a report. Without report-status nothing is said.
func (s *session) report() error {
	var buf bytes.Buffer
	if s.req.reportStatus {
		pw := pktline.NewWriter(&buf)
		if s.unpackErr != nil {
			pw.WriteString("unpack " + wire.ClientMessage(s.unpackErr) + "\n")
		} else {
			pw.WriteString("unpack ok\n")
		}
		for _, c := range s.req.commands {
			if c.Status == "" {
				pw.WriteString("ok " + c.Name + "\n")
				if c.Pushed.Valid() && s.req.reportV2 {
					pw.WriteString("option old-oid " + c.Old.String() + "\n")
					pw.WriteString("option new-oid " + c.New.String() + "\n")
				}
			} else {
				pw.WriteString("ng " + c.Name + " " + reason(c.Status) + "\n")
			}
		}
		pw.Flush()
	}
	var err error
	if s.sb != nil {
		for _, c := range s.req.commands {
			if c.Status == "" && c.Pushed.Valid() {
				// Told to every client, quiet or not (it is not
				// progress): one with report-status alone learns no
				// other way where its branch is.
				s.sb.Progress(fmt.Sprintf("%s was behind: rebased onto %s, now at %s; run git pull --rebase\n", c.Name, c.Old, c.New))
			}
		}
		if buf.Len() > 0 {
			_, err = s.sb.Write(buf.Bytes())
		}
		if err == nil {
			err = s.pw.Flush()
		}
	} else if buf.Len() > 0 {
		_, err = s.out.Write(buf.Bytes())
	}
	if err == nil {
		err = s.out.Flush()
	}
	if err != nil {
		return fmt.Errorf("receive: write the report: %w", err)
	}
	return nil
}

// maxReasonLen bounds an "ng" reason (Options.Check chooses some).
const maxReasonLen = 1024

// reason returns status as it may appear on an "ng" line: one line, at
// most maxReasonLen bytes.
func reason(status string) string {
	if i := strings.IndexAny(status, "\r\n"); i >= 0 {
		status = status[:i]
	}
	if len(status) > maxReasonLen {
		status = status[:maxReasonLen]
	}
	if status == "" {
		status = ngInternal
	}
	return status
}
