//go:build unix

package logs

import (
	"io"
	"log/syslog"
)

func openSyslog(role string) (io.Writer, error) {
	return syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "gotd "+role)
}
