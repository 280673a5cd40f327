module gotd

go 1.26.8

require (
	github.com/klauspost/compress v1.20.3
	github.com/pjbgf/sha1cd v0.7.0
	golang.org/x/sys v0.49.0
)
